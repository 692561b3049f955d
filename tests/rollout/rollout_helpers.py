"""A store with a champion and two candidates, servers over it, and real HTTP traffic.

v1 is the champion, v2 a healthy challenger (the same kind of model, another seed), v3 a
worse one: a decision tree that may not split (always the majority class) — a real model
of a supported estimator, so "worse" needs no custom class the model allowlist would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from serving_helpers import NUMERIC, classifiers, make_frame, register  # noqa: F401
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from modelpilot.artifacts import ArtifactStore, open_artifacts
from modelpilot.config import PilotConfig
from modelpilot.rollout import get_strategy
from modelpilot.rollout.state import active
from modelpilot.serving import create_app, start_in_thread
from modelpilot.serving.cache import load_version
from modelpilot.serving.predlog import FeedbackBatch, PredictionBatch, PredictionLogWriter
from modelpilot.serving.routing import error_batch
from modelpilot.store import Store

MODEL = "churn"
FEATURES = ["age", "income", "plan", "region"]


def dummy_pipeline() -> Pipeline:
    df = make_frame(400, 5)
    pre = ColumnTransformer([("num", SimpleImputer(), NUMERIC)])
    # a leaf needs more rows than there are: the tree stays one leaf, the majority class
    stump = DecisionTreeClassifier(min_samples_split=len(df) + 1)
    return Pipeline([("pre", pre), ("model", stump)]).fit(df, df["churned"])


def make_config(tmp_path: Path, rollout: dict[str, Any] | None = None, **sections: Any) -> PilotConfig:
    raw: dict[str, Any] = {
        "model": {"name": MODEL, "target": "churned"},
        "store": {"url": "sqlite:///store.db"},
        "artifacts": {"url": "artifacts"},
        "serving": {"refresh_interval": 0.1, "log_flush_interval": 0.2},
        "rollout": rollout or {},
        **sections,
    }
    return PilotConfig.from_dict(raw, base_dir=tmp_path)


@dataclass
class REnv:
    tmp_path: Path
    cfg: PilotConfig
    store: Store
    artifacts: ArtifactStore
    champion: int
    healthy: int
    worse: int

    def configure(self, rollout: dict[str, Any] | None = None, **sections: Any) -> PilotConfig:
        self.cfg = make_config(self.tmp_path, rollout, **sections)
        return self.cfg

    def start(self, strategy: str, candidate: int) -> None:
        get_strategy(strategy, cfg=self.cfg, artifacts=self.artifacts).start(
            self.store, MODEL, candidate, champion=self.champion, reason="test", numbers={},
        )

    def advance(self) -> Any:
        state = active(self.store, MODEL)
        strategy = get_strategy(state.strategy if state else "replace", cfg=self.cfg, artifacts=self.artifacts)
        return strategy.advance(self.store, MODEL)


@pytest.fixture
def renv(tmp_path: Path, classifiers: list[Pipeline]) -> Iterator[REnv]:  # noqa: F811
    cfg = make_config(tmp_path)
    store = Store.open(cfg.store_url)
    artifacts = open_artifacts(cfg.artifacts_url)
    v1 = register(store, artifacts, MODEL, classifiers[0])
    v2 = register(store, artifacts, MODEL, classifiers[1], champion=False)
    v3 = register(store, artifacts, MODEL, dummy_pipeline(), champion=False)
    yield REnv(tmp_path, cfg, store, artifacts, v1, v2, v3)
    store.close()


@dataclass
class Server:
    app: Any
    url: str
    client: httpx.Client

    def flush(self) -> None:
        self.app.state.shadow.join()
        self.app.state.writer.flush()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """Poll GET /v1/models/churn until ``predicate(doc)`` (the server sees the store change)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            doc = self.client.get(f"/v1/models/{MODEL}").json()
            if predicate(doc) or time.monotonic() > deadline:
                return doc
            time.sleep(0.05)

    def wait_refreshed(self) -> None:
        """Wait two refresh intervals' worth, so the cache has read the store."""
        self.app.state.cache.refresh()


@contextmanager
def serve(env: REnv, fault_injector: Any = None) -> Iterator[Server]:
    app = create_app(env.cfg, env.store, env.artifacts, fault_injector=fault_injector)
    handle, url = start_in_thread(app)
    client = httpx.Client(base_url=url, timeout=30)
    try:
        yield Server(app, url, client)
    finally:
        client.close()
        handle.stop()


def traffic(n: int, seed: int = 0, prefix: str = "r") -> pd.DataFrame:
    """n rows of features with their true label and a request id."""
    df = make_frame(n, seed)
    df.insert(0, "id", [f"{prefix}{seed}-{i}" for i in range(n)])
    return df


def instances(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return rows[["age", "income", "plan", "region"]].to_dict("records")


def send(server: Server, rows: pd.DataFrame, *, batch: int = 1, labels: bool = True) -> list[dict[str, Any]]:
    """POST rows as predict requests of ``batch`` instances; then their labels as feedback."""
    answers = []
    for start in range(0, len(rows), batch):
        part = rows.iloc[start : start + batch]
        resp = server.client.post(f"/v1/models/{MODEL}/predict", json={"instances": instances(part), "ids": part["id"].tolist()})
        assert resp.status_code == 200, resp.text
        answers.append(resp.json())
    if labels:
        for start in range(0, len(rows), 200):
            part = rows.iloc[start : start + 200]
            fb = server.client.post(f"/v1/models/{MODEL}/feedback",
                                    json={"ids": part["id"].tolist(), "labels": part["churned"].tolist()})
            assert fb.status_code == 200, fb.text
    return answers


def versions_of(answers: list[dict[str, Any]]) -> np.ndarray:
    return np.array([a["model_version"] for a in answers])


# --------------------------------------------------------------------------- the prediction log, written directly


@contextmanager
def prediction_log(env: REnv) -> Iterator[PredictionLogWriter]:
    writer = PredictionLogWriter(env.artifacts, flush_rows=1_000_000, flush_interval=3600)
    try:
        yield writer
    finally:
        writer.close()


def log_answers(writer: PredictionLogWriter, env: REnv, model: str, version: int, rows: pd.DataFrame,
                role: str = "primary", latency_ms: float = 1.0) -> Any:
    """Log what ``version`` answers to ``rows`` as a server does; returns the answer."""
    loaded = load_version(env.store, env.artifacts, model, version)
    out = loaded.predict(rows[FEATURES])
    columns = {c: rows[c].to_numpy() for c in FEATURES}
    if role == "error":
        writer.log_predictions(error_batch(model, loaded, rows["id"].tolist(), columns, latency_ms))
    else:
        writer.log_predictions(PredictionBatch(
            model=model, ids=rows["id"].tolist(), version=version, predictions=out.labels, scores=out.scores,
            probabilities=out.probabilities, features=columns, latency_ms=latency_ms, role=role))
    return out


def log_feedback(writer: PredictionLogWriter, model: str, rows: pd.DataFrame, labels: Any,
                 rewards: Any = None) -> None:
    writer.log_feedback(FeedbackBatch(model=model, ids=rows["id"].tolist(), labels=[str(v) for v in labels],
                                      rewards=None if rewards is None else [float(r) for r in rewards]))
