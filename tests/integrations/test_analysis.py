"""The rollout-analysis endpoint over a real prediction log: the verdicts Argo and Flagger read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelpilot.artifacts import open_artifacts
from modelpilot.auth import create_token
from modelpilot.config import PilotConfig
from modelpilot.rollout import get_strategy
from modelpilot.serving import create_app
from modelpilot.serving.predlog import FeedbackBatch, PredictionBatch, PredictionLogWriter
from modelpilot.store import Store


class Project:
    def __init__(self, tmp_path: Path, ab: dict[str, Any] | None = None, **serving: Any) -> None:
        self.cfg = PilotConfig.model_validate({
            "model": {"name": "churn", "target": "y", "task": "classification"},
            "serving": serving, "rollout": {"canary": {"hold_requests": 150}, "ab": ab or {}},
        })
        self.store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        self.artifacts = open_artifacts(str(tmp_path / "artifacts"))
        for _ in range(3):
            self.store.register_version("churn", run_id=None, artifact_key="k", reference_key=None,
                                        signature=[{"name": "x", "type": "float"}], task="classification",
                                        classes=["0", "1"], metrics={}, lineage={})
        self.store.set_alias("churn", "champion", 1)
        self.rng = np.random.default_rng(0)
        self.n = 0

    def serve(self, version: int, calls: int, *, accuracy: float, latency_ms: float = 5.0, errors: int = 0,
              role: str = "primary") -> None:
        """Log ``calls`` answered requests of ``version`` (labels right with ``accuracy``) and ``errors`` failed ones."""
        writer = PredictionLogWriter(self.artifacts, flush_rows=10_000, flush_interval=60)
        writer.start()
        ids, labels = [], []
        for k in range(calls + errors):
            rid = f"r{self.n}"
            self.n += 1
            failed = k >= calls
            label = str(self.rng.integers(0, 2))
            right = self.rng.random() < accuracy
            pred = np.array([label if right else str(1 - int(label))], dtype=object)
            writer.log_predictions(PredictionBatch(
                model="churn", ids=[rid], version=version, predictions=np.array([None], dtype=object) if failed else pred,
                scores=np.array([np.nan if failed else 0.5 + 0.1 * self.rng.standard_normal()]), probabilities=None,
                features={"x": np.array([self.rng.random()])}, latency_ms=latency_ms * (1 + 0.2 * self.rng.random()),
                role="error" if failed else role))
            if not failed:
                ids.append(rid)
                labels.append(label)
        writer.log_feedback(FeedbackBatch(model="churn", ids=ids, labels=labels))
        writer.close()

    def ask(self, method: str, path: str, **kw: Any) -> httpx.Response:
        app = create_app(self.cfg, self.store, self.artifacts)

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, **kw)

        # on a thread of its own: on an xdist worker the dashboard tests' Playwright (sync API)
        # may be running an event loop on this thread for the rest of the session
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    p = Project(tmp_path)
    yield p
    p.store.close()


def test_a_healthy_candidate_with_enough_traffic_is_successful(project: Project) -> None:
    project.serve(1, 300, accuracy=0.8)
    project.serve(2, 300, accuracy=0.8)
    got = project.ask("GET", "/v1/models/churn/analysis?candidate=2")
    assert got.status_code == 200
    body = got.json()
    assert (body["phase"], body["successful"], body["failed"]) == ("Successful", True, False)
    assert body["arms"]["challenger"]["requests"] == 300 and body["arms"]["champion"]["labelled"] == 300
    assert body["health"]["latency_p99_ms"] > 0 and body["breaches"] == []
    assert project.ask("POST", "/v1/models/churn/analysis?candidate=2", json={"name": "podinfo"}).status_code == 200


def test_a_failing_candidate_is_failed_with_the_breach(project: Project) -> None:
    project.serve(1, 300, accuracy=0.8)
    project.serve(2, 200, accuracy=0.8, errors=40)
    body = project.ask("GET", "/v1/models/churn/analysis?candidate=2").json()
    assert body["phase"] == "Failed" and "error rate" in body["reason"]
    hook = project.ask("POST", "/v1/models/churn/analysis", json={"metadata": {"candidate": "2"}})
    assert hook.status_code == 412 and hook.json()["phase"] == "Failed"


def test_a_worse_candidate_fails_on_the_labelled_metric(project: Project) -> None:
    project.serve(1, 400, accuracy=0.85)
    project.serve(2, 400, accuracy=0.6)
    body = project.ask("GET", "/v1/models/churn/analysis?candidate=2").json()
    assert body["phase"] == "Failed"
    assert "accuracy" in body["reason"] and body["health"]["challenger_metric"] < body["health"]["champion_metric"]


def test_too_little_traffic_is_inconclusive_and_flagger_chooses(project: Project) -> None:
    project.serve(1, 300, accuracy=0.8)
    project.serve(2, 30, accuracy=0.8)
    body = project.ask("GET", "/v1/models/churn/analysis?candidate=2").json()
    assert body["phase"] == "Inconclusive" and body["missing"]
    assert "30 of the 150" in body["reason"]
    assert project.ask("POST", "/v1/models/churn/analysis?candidate=2").status_code == 412
    assert project.ask("POST", "/v1/models/churn/analysis?candidate=2&inconclusive=pass").status_code == 200


def test_decisions_already_made_win_and_the_rollout_names_the_candidate(project: Project) -> None:
    assert project.ask("GET", "/v1/models/churn/analysis?candidate=1").json()["phase"] == "Successful"  # champion
    project.store.set_version_status("churn", 3, "rejected", reason="gate")
    assert project.ask("GET", "/v1/models/churn/analysis?candidate=3").json()["phase"] == "Failed"
    missing = project.ask("GET", "/v1/models/churn/analysis")
    assert missing.status_code == 404 and "?candidate=N" in missing.json()["error"]["message"]
    strategy = get_strategy("canary", cfg=project.cfg, artifacts=project.artifacts)
    strategy.start(project.store, "churn", 2, champion=1, reason="test", numbers={})
    body = project.ask("GET", "/v1/models/churn/analysis").json()
    assert body["candidate"] == 2 and body["rollout"]["strategy"] == "canary" and body["phase"] == "Inconclusive"


def test_bad_requests_are_clear(project: Project) -> None:
    bad = project.ask("GET", "/v1/models/churn/analysis?candidate=two")
    assert bad.status_code == 422 and "positive integer" in bad.json()["error"]["message"]
    assert project.ask("GET", "/v1/models/churn/analysis?candidate=9").status_code == 404
    assert project.ask("GET", "/v1/models/nope/analysis?candidate=2").status_code == 404
    flag = project.ask("POST", "/v1/models/churn/analysis?candidate=2&inconclusive=maybe")
    assert flag.status_code == 422 and "'pass' or 'fail'" in flag.json()["error"]["message"]


def test_a_viewer_token_is_needed_when_reads_are_closed(tmp_path: Path) -> None:
    p = Project(tmp_path, require_token_for_predict=True)
    token = create_token(p.store, "argo", "viewer")
    assert p.ask("GET", "/v1/models/churn/analysis?candidate=1").status_code == 401
    ok = p.ask("GET", "/v1/models/churn/analysis?candidate=1", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["phase"] == "Successful"
    assert p.ask("POST", "/v1/models/churn/analysis?candidate=1").status_code == 401
    p.store.close()


def test_a_significantly_better_candidate_is_successful_on_the_ab_test(tmp_path: Path) -> None:
    project = Project(tmp_path, ab={"min_detectable_effect": 0.1})  # about 360 labelled rows per arm
    project.serve(1, 900, accuracy=0.6)
    project.serve(2, 900, accuracy=0.9)
    body = project.ask("GET", "/v1/models/churn/analysis?candidate=2").json()
    assert body["phase"] == "Successful" and body["reason"].startswith("two_proportion_z: challenger better")
    assert body["test"]["effect"] > 0.2 and body["test"]["p_value"] < 0.05
    assert body["test"]["n_challenger"] >= body["n_required"]
    project.store.close()


def test_a_shadow_candidate_is_judged_on_its_shadow_copies(project: Project) -> None:
    project.serve(1, 300, accuracy=0.8)
    project.serve(2, 300, accuracy=0.8, role="shadow")
    body = project.ask("GET", "/v1/models/churn/analysis?candidate=2").json()
    assert body["shadow"] is True and body["arms"]["challenger"]["requests"] == 300
    assert body["phase"] == "Successful"
