"""The graph at register time, on the server, and what happens when it cannot be trusted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from modelpilot.artifacts import ArtifactStore, open_artifacts, save_model
from modelpilot.config import PilotConfig
from modelpilot.data.synth import customers
from modelpilot.executors import LocalExecutor
from modelpilot.onnx import PROBA_TOLERANCE
from modelpilot.serving import create_app, start_in_thread
from modelpilot.serving.cache import load_version
from modelpilot.store import Store
from modelpilot.training import build_pipeline, make_estimator, train
from modelpilot.training.package import save_onnx

NUMERIC = ["tenure_months", "support_calls", "age"]
CATEGORICAL = ["plan", "region", "channel"]
COLUMNS = NUMERIC + CATEGORICAL
SIGNATURE = [{"name": c, "type": "float"} for c in NUMERIC] + [{"name": c, "type": "category"} for c in CATEGORICAL]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = customers(1200, seed=5)
    df.loc[df.index % 17 == 0, "plan"] = None
    return df


def _fit(frame: pd.DataFrame, target: str = "churned", task: str = "classification") -> Pipeline:
    est = make_estimator(None, task, {"max_iter": 25}, seed=0)
    pipe = build_pipeline(SimpleNamespace(numeric=NUMERIC, categorical=CATEGORICAL), est)
    return pipe.fit(frame[COLUMNS], frame[target])


@pytest.fixture(scope="module")
def pipe(frame: pd.DataFrame) -> Pipeline:
    return _fit(frame)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[PilotConfig, Store, ArtifactStore]]:
    cfg = PilotConfig.from_dict(
        {"model": {"name": "churn", "target": "churned"}, "store": {"url": "sqlite:///store.db"},
         "artifacts": {"url": "artifacts"}, "serving": {"refresh_interval": 0.2, "log_flush_interval": 60}},
        base_dir=tmp_path,
    )
    store = Store.open(cfg.store_url)
    yield cfg, store, open_artifacts(cfg.artifacts_url)
    store.close()


def _register(store: Store, artifacts: ArtifactStore, pipe: Pipeline, onnx: dict[str, Any] | None) -> int:
    classification = hasattr(pipe, "classes_")
    lineage: dict[str, Any] = {"estimator": type(pipe[-1]).__name__}
    if onnx is not None:
        lineage["onnx"] = onnx
    rec = store.register_version(
        "churn", run_id=None, artifact_key=save_model(artifacts, pipe), reference_key=None, signature=SIGNATURE,
        task="classification" if classification else "regression",
        classes=[int(c) for c in pipe.classes_] if classification else None, metrics={}, lineage=lineage,
    )
    store.set_alias("churn", "champion", rec.version)
    return rec.version


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_the_server_runs_the_graph_and_says_which_runtime_serves(
    stores: tuple[PilotConfig, Store, ArtifactStore], pipe: Pipeline, frame: pd.DataFrame,
) -> None:
    cfg, store, artifacts = stores
    graph = save_onnx(artifacts, pipe, SIGNATURE, frame[COLUMNS].tail(300))
    assert graph["status"] == "converted" and artifacts.exists(graph["key"]), graph
    _register(store, artifacts, pipe, graph)
    rows = frame[COLUMNS].head(20).astype(object).where(frame[COLUMNS].head(20).notna(), None)
    rows.loc[0, CATEGORICAL] = None  # every category missing: a JSON null each
    instances = rows.to_dict(orient="records")
    handle, url = start_in_thread(create_app(cfg, store, artifacts))
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            body = client.post("/v1/models/churn/predict", json={"instances": instances}).json()
            info = client.get("/v1/models/churn").json()
            metrics = client.get("/metrics").text
    finally:
        handle.stop()
    expected = pipe.predict_proba(pd.DataFrame(instances))
    assert np.abs(np.asarray(body["probabilities"]) - expected).max() <= PROBA_TOLERANCE
    assert body["predictions"] == [int(c) for c in pipe.classes_[expected.argmax(axis=1)]]
    assert info["serving"] == {"version": 1, "runtime": "onnxruntime"}
    assert info["versions"][0]["onnx"]["status"] == "converted"
    assert info["versions"][0]["onnx"]["parity"]["passed"] is True
    assert _metric(metrics, "modelpilot_model_runtime", model="churn", runtime="onnxruntime") == 1.0
    assert _metric(metrics, "modelpilot_model_runtime", model="churn", runtime="sklearn") == 0.0


def test_a_graph_that_disagrees_with_the_pipeline_is_not_used(
    stores: tuple[PilotConfig, Store, ArtifactStore], pipe: Pipeline, frame: pd.DataFrame,
) -> None:
    _, store, artifacts = stores
    # a real graph of the same inputs, but of another model: it runs, and answers wrong
    other = _fit(frame.assign(churned=1 - frame["churned"]))
    tampered = save_onnx(artifacts, other, SIGNATURE, frame[COLUMNS].tail(100))
    version = _register(store, artifacts, pipe, tampered)
    model = load_version(store, artifacts, "churn", version)
    assert model.onnx is None and model.runtime == "fastpath"
    # bytes that are not a graph at all
    broken = {**tampered, "key": artifacts.put_bytes(b"not an onnx graph", suffix=".onnx")}
    model = load_version(store, artifacts, "churn", _register(store, artifacts, pipe, broken))
    assert model.runtime == "fastpath"
    rows = frame[COLUMNS].head(30).reset_index(drop=True)
    got = model.predict_columns({c: rows[c].to_numpy(dtype=float if c in NUMERIC else object) for c in COLUMNS})
    np.testing.assert_allclose(got.probabilities, pipe.predict_proba(rows))


def _old_chain_pipeline(frame: pd.DataFrame) -> Pipeline:
    """The categorical chain of versions trained before the string marker: impute NaN, then cast."""
    chain = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("as_str", FunctionTransformer(np.asarray, kw_args={"dtype": "str"}, feature_names_out="one-to-one")),
        ("encode", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)),
    ])
    ct = ColumnTransformer([("numeric", SimpleImputer(strategy="median"), NUMERIC), ("categorical", chain, CATEGORICAL)],
                           sparse_threshold=0.0)
    est = make_estimator(None, "classification", {"max_iter": 25}, seed=0)
    return Pipeline([("preprocess", ct), ("model", est)]).fit(frame[COLUMNS], frame["churned"])


@pytest.mark.parametrize("kind", ["current", "earlier"])
def test_the_fast_path_answers_a_row_of_missing_categories_like_the_pipeline(
    kind: str, stores: tuple[PilotConfig, Store, ArtifactStore], pipe: Pipeline, frame: pd.DataFrame,
) -> None:
    _, store, artifacts = stores
    model_pipe = pipe if kind == "current" else _old_chain_pipeline(frame)
    model = load_version(store, artifacts, "churn", _register(store, artifacts, model_pipe, None))
    # the probe check at load includes such a row: the compiled path is now used for both
    assert model.runtime == "fastpath"
    columns = {c: np.array([1.0, 5.0]) for c in NUMERIC}
    columns.update({c: np.array([None, None], dtype=object) for c in CATEGORICAL})
    columns["plan"][1] = 7  # a non-string category keeps pandas from turning None into NaN
    expected = model_pipe.predict_proba(pd.DataFrame({**columns, **{c: [np.nan, np.nan] for c in CATEGORICAL},
                                                      "plan": [np.nan, 7]}))
    np.testing.assert_allclose(model.predict_columns(columns).probabilities, expected)
    plain = type(model)(**{**{f: getattr(model, f) for f in model.__dataclass_fields__}, "fast": None})
    np.testing.assert_allclose(plain.predict_columns(columns).probabilities, expected)


def test_register_stores_the_graph_beside_the_skops_file(
    stores: tuple[PilotConfig, Store, ArtifactStore], frame: pd.DataFrame, tmp_path: Path,
) -> None:
    _, store, artifacts = stores
    cfg = PilotConfig.from_dict(
        {"model": {"name": "churn", "target": "churned", "time_column": "ts",
                   "params": {"max_iter": 20}},
         "tuning": {"enabled": False},
         "evaluation": {"permutation_repeats": 1, "importance_max_rows": 100, "learning_curve": False}},
        base_dir=tmp_path,
    )
    data = frame[[*COLUMNS, "ts", "churned"]]
    with LocalExecutor(workers=1) as executor:
        result = train(cfg, store, artifacts, executor, data=data)
    record = store.get_version("churn", result.version)
    graph = record.lineage["onnx"]
    assert graph["status"] == "converted", graph
    assert graph["key"].endswith(".onnx") and graph["key"] != record.artifact_key
    assert graph["parity"]["passed"] and graph["parity"]["rows"] > 3
    assert [s["name"] for s in graph["inputs"]] == [s["name"] for s in record.signature]
    model = load_version(store, artifacts, "churn", result.version)
    assert model.runtime == "onnxruntime"


def test_backtests_make_no_graphs(tmp_path: Path) -> None:
    from modelpilot.backtest.replay import backtest_profile

    cfg = PilotConfig.from_dict({"model": {"name": "churn", "target": "churned"}}, base_dir=tmp_path)
    assert cfg.serving.onnx is True  # on by default
    assert backtest_profile(cfg, tmp_path / "work").serving.onnx is False  # replayed versions are never served
