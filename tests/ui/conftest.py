"""Fixtures for the dashboard tests: one real run of the loop (the demo) per session.

The demo trains v1, streams drifting traffic through a real server, retrains, rejects and
promotes, so every page has real data: runs with trials and learning curves, monitoring
reports, events, costs. Tests that change the store (approve/reject) register their own
version awaiting review, so they do not depend on each other's order.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelpilot.auth import create_token
from modelpilot.pilot import Pilot
from modelpilot.store import Store

with warnings.catch_warnings():  # starlette deprecates httpx in its TestClient; it still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@dataclass
class DemoEnv:
    folder: Path
    pilot: Pilot
    operator: str
    viewer: str

    @property
    def store(self) -> Store:
        return self.pilot.store

    def awaiting_version(self) -> int:
        """Register a copy of the champion as a new version awaiting review."""
        store = self.store
        champion = store.get_version("churn", store.get_alias("churn", "champion") or 1)
        rec = store.register_version(
            "churn", run_id=champion.run_id, artifact_key=champion.artifact_key,
            reference_key=champion.reference_key, signature=champion.signature, task=champion.task,
            classes=champion.classes, metrics=champion.metrics,
            lineage={**champion.lineage, "parent_version": champion.version}, cost=champion.cost,
            status="awaiting_approval", description="waiting for a person",
        )
        store.request_approval("churn", rec.version)
        return rec.version


@pytest.fixture(scope="session")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoEnv]:
    from modelpilot.demo import run_demo

    folder = tmp_path_factory.mktemp("ui-demo")
    run_demo(folder)
    pilot = Pilot.from_config(folder / "pilot.yaml")
    env = DemoEnv(folder, pilot, create_token(pilot.store, "ops", "operator"),
                  create_token(pilot.store, "watcher", "viewer"))
    try:
        yield env
    finally:
        pilot.close()


@pytest.fixture(scope="session")
def ui_client(demo_env: DemoEnv) -> Iterator[TestClient]:
    from modelpilot.ui import create_ui_app

    app = create_ui_app(demo_env.pilot.cfg, demo_env.store, demo_env.pilot.artifacts)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def make_client(tmp_path: Path) -> Callable[..., Any]:
    """A client over a fresh, empty project in ``tmp_path`` (for the empty states)."""
    from modelpilot.config import PilotConfig
    from modelpilot.ui import create_ui_app

    opened: list[Pilot] = []

    def make() -> tuple[TestClient, Pilot]:
        cfg = PilotConfig.from_dict({"model": {"name": "churn", "target": "churned"}}, base_dir=tmp_path)
        pilot = Pilot(cfg)
        opened.append(pilot)
        return TestClient(create_ui_app(cfg, pilot.store, pilot.artifacts)), pilot

    yield make
    for p in opened:
        p.close()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, never a downloaded one); one Playwright for the session:
    the sync API allows only one at a time."""
    from modelpilot.testing.services import unavailable

    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
