"""Helpers and fixtures for the server tests: real store (SQLite), real artifact folder, real models.

The model bundle is built here the way training builds it (a fitted sklearn Pipeline
saved with ``save_model`` and registered with ``register_version``) — serving must not
import ``modelpilot.training``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from modelpilot.artifacts import ArtifactStore, open_artifacts, save_model
from modelpilot.config import PilotConfig
from modelpilot.serving import create_app, start_in_thread
from modelpilot.store import Store

NUMERIC = ["age", "income"]
CATEGORICAL = ["plan", "region"]
SIGNATURE = [
    {"name": "age", "type": "float"},
    {"name": "income", "type": "float"},
    {"name": "plan", "type": "category"},
    {"name": "region", "type": "category"},
]


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n).round(1),
            "income": rng.normal(50_000, 15_000, n).round(0),
            "plan": rng.choice(["basic", "pro", "max"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    logit = (df["age"] - 45) / 10 + (df["plan"] == "basic") * 1.5 - (df["income"] - 50_000) / 20_000
    df["churned"] = (logit + rng.normal(0, 1, n) > 0).astype(int)
    df["spend"] = df["income"] / 100 + df["age"] * 3 + rng.normal(0, 10, n)
    return df


def make_pipeline(task: str = "classification", *, seed: int = 0, max_iter: int = 20) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(), NUMERIC),
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                CATEGORICAL,
            ),
        ]
    )
    est: Any = (
        HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
        if task == "classification"
        else HistGradientBoostingRegressor(max_iter=max_iter, random_state=seed)
    )
    df = make_frame(400, seed)
    target = "churned" if task == "classification" else "spend"
    return Pipeline([("pre", pre), ("model", est)]).fit(df[NUMERIC + CATEGORICAL], df[target])


@pytest.fixture(scope="session")
def classifiers() -> list[Pipeline]:
    """Two different fitted classifiers (v1 and v2 of a model)."""
    return [make_pipeline(seed=0, max_iter=10), make_pipeline(seed=1, max_iter=30)]


@pytest.fixture(scope="session")
def regressor() -> Pipeline:
    return make_pipeline("regression")


def register(
    store: Store, artifacts: ArtifactStore, name: str, pipeline: Pipeline, *,
    champion: bool = True, signature: list[dict[str, str]] | None = None,
) -> int:
    """Save, register and (by default) promote a pipeline; returns the version."""
    classification = hasattr(pipeline, "classes_")
    record = store.register_version(
        name, run_id=None, artifact_key=save_model(artifacts, pipeline), reference_key=None,
        signature=signature or SIGNATURE,
        task="classification" if classification else "regression",
        classes=[c.item() for c in pipeline.classes_] if classification else None,
        metrics={"accuracy": 0.8}, lineage={"estimator": type(pipeline[-1]).__name__},
    )
    if champion:
        store.set_alias(name, "champion", record.version)
    return record.version


def make_config(tmp_path: Path, **serving: Any) -> PilotConfig:
    return PilotConfig.from_dict(
        {
            "model": {"name": "churn", "target": "churned"},
            "store": {"url": "sqlite:///store.db"},
            "artifacts": {"url": "artifacts"},
            "serving": {"refresh_interval": 0.2, "log_flush_interval": 60, **serving},
        },
        base_dir=tmp_path,
    )


@dataclass
class Env:
    cfg: PilotConfig
    store: Store
    artifacts: ArtifactStore


@pytest.fixture
def env(tmp_path: Path, classifiers: list[Pipeline]) -> Iterator[Env]:
    """A store + artifact folder with model "churn" v1 as champion."""
    cfg = make_config(tmp_path)
    store = Store.open(cfg.store_url)
    artifacts = open_artifacts(cfg.artifacts_url)
    register(store, artifacts, "churn", classifiers[0])
    yield Env(cfg, store, artifacts)
    store.close()


@dataclass
class Served:
    app: Any
    url: str
    client: httpx.Client
    stop: Callable[[], None]

    def metric(self, name: str, **labels: str) -> float:
        """The value of one Prometheus sample on /metrics (0 if absent)."""
        text = self.client.get("/metrics").text
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture
def served(env: Env) -> Iterator[Served]:
    """The app over ``env`` under uvicorn on a free port, and an httpx client for it."""
    app = create_app(env.cfg, env.store, env.artifacts)
    handle, url = start_in_thread(app)
    client = httpx.Client(base_url=url, timeout=30)
    try:
        yield Served(app, url, client, handle.stop)
    finally:
        client.close()
        if handle.thread.is_alive():
            handle.stop()


def instance(i: int = 0) -> dict[str, Any]:
    plans, regions = ["basic", "pro", "max"], ["north", "south", "east", "west"]
    return {"age": 20.0 + i % 50, "income": 40_000 + 100 * i, "plan": plans[i % 3], "region": regions[i % 4]}


SERVER_PROCESS = """
import sys
from modelpilot.config import PilotConfig
from modelpilot.serving import run_server
run_server(PilotConfig.load(sys.argv[1]), "127.0.0.1", int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_process(config: Path, timeout: float = 60.0) -> tuple[Any, str]:
    """``run_server`` in a child process on a free port; waits for /healthz. Returns (proc, url)."""
    import os
    import subprocess
    import sys
    import time

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", SERVER_PROCESS, str(config), str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the server process did not start (exit code {proc.poll()})")
        time.sleep(0.1)
