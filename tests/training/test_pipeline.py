"""``train`` end to end on real components: registry, aliases, artifacts, runs, gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.artifacts import ArtifactStore, get_json, load_model
from modelpilot.data import synth
from modelpilot.errors import ConfigError, ValidationFailed
from modelpilot.executors import LocalExecutor
from modelpilot.monitoring.errormodel import estimate_error
from modelpilot.store import Store
from modelpilot.training import train


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return synth.customers(1200, seed=3)


def test_first_version_becomes_champion_and_its_artifacts_work(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, executor: LocalExecutor, churn: pd.DataFrame,
    make_cfg: Any,
) -> None:
    cfg = make_cfg(tuning={"enabled": True, "n_trials": 6, "parallel": 2})
    seen: list[tuple[str, int, int | None]] = []
    result = train(cfg, store, artifacts, executor, data=churn, progress=lambda s, d, t: seen.append((s, d, t)))

    assert (result.version, result.aliases, result.status) == (1, ["champion"], "registered")
    assert store.get_alias("churn", "champion") == 1
    rec = store.get_version("churn", 1)
    assert rec.metrics == result.metrics and result.metrics["accuracy"] > 0.7
    assert rec.lineage["run_id"] == result.run_id and rec.lineage["dataset_hashes"] == [result.dataset["hash"]]
    assert rec.lineage["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert rec.classes == [0, 1]

    # the bundle predicts from a frame with the signature's columns; the reference profiles them
    model = load_model(artifacts, rec.artifact_key)
    cols = [c["name"] for c in rec.signature]
    proba = model.predict_proba(churn[cols].head(50))
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1.0)
    reference = get_json(artifacts, rec.reference_key)
    assert set(reference["numeric"]) | set(reference["categorical"]) == set(cols)
    assert reference["score"] is not None
    # the validation rows calibrate the probabilities monitoring's label-free estimate reads
    assert reference["calibration"]["rows"] == result.split["validation_rows"]
    assert len(reference["calibration"]["maps"]) == 1
    assert reference["conformal"]["task"] == "classification" and reference["conformal"]["alpha"] == 0.1
    assert 0 < reference["conformal"]["q"] < 1 and set(reference["joint"]) >= {"encoding", "pca"}

    # every trial is a metric point of the run at step = trial number, n_trials respected
    points = store.metric_history(result.run_id, "trial/accuracy")
    assert len(result.trials) == 6
    assert sorted(p.step for p in points) == sorted(t["number"] for t in result.trials if t["value"] is not None)
    run = store.get_run(result.run_id)
    assert run.status == "finished" and run.cost == pytest.approx(result.cost["total"])
    assert set(run.params["trials"]) == {str(t["number"]) for t in result.trials}
    assert ("tune", 6, 6) in seen and ("register", 1, 1) in seen

    # the time split really splits by time: validation is the latest period
    assert result.split["method"] == "time"
    cutoff = pd.Timestamp(result.split["cutoff"])
    assert (churn["ts"] >= cutoff).sum() == result.split["validation_rows"]

    # evaluation outputs
    assert {s["value"] for s in result.segments} <= {"north", "south", "east", "west"} and result.segments
    assert result.feature_importance[0]["importance"] >= result.feature_importance[-1]["importance"]
    curve = store.metric_history(result.run_id, "learning_curve/validation")
    assert len(curve) == len(result.learning_curve["steps"]) > 1
    assert set(result.profile["stages"]) >= {"load", "validate", "split", "tune", "fit", "evaluate", "package"}
    assert result.profile["bytes_written"] > 0 and result.cost["total"] > 0
    assert result.to_dict()["gate"]["passed"] is True


def test_regression(store: Store, artifacts: ArtifactStore, executor: LocalExecutor, make_cfg: Any) -> None:
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    df["y"] = 3 * df["x1"] - df["x2"] + np.where(df["c"] == "a", 2.0, 0.0) + rng.normal(0, 0.3, n)
    cfg = make_cfg(model={"target": "y", "time_column": None, "segments": ["c"]})
    result = train(cfg, store, artifacts, executor, data=df)
    assert result.task == "regression" and result.primary_metric == "rmse"
    assert result.metrics["r2"] > 0.8 and result.split["method"] == "random"
    assert result.aliases == ["champion"]
    model = load_model(artifacts, result.artifact_key)
    assert model.predict(df[["x1", "x2", "c"]].head(3)).shape == (3,)
    # the reference holds the residual model: its estimate on the rows is near the real error
    error_model = get_json(artifacts, result.reference_key)["error_model"]
    assert get_json(artifacts, result.reference_key)["conformal"]["task"] == "regression"
    est = estimate_error(error_model, df[["x1", "x2", "c"]], model.predict(df[["x1", "x2", "c"]]))
    assert est["expected_rmse"] == pytest.approx(result.metrics["rmse"], rel=0.5)


def test_regression_in_large_units_is_not_called_overfitting(
    store: Store, artifacts: ArtifactStore, executor: LocalExecutor, make_cfg: Any
) -> None:
    # house prices: a linear model with train and validation rmse within a few percent of each
    # other; an absolute bound of 0.1 would flag it ("gap 3822.9 (bound 0.1)")
    rng = np.random.default_rng(1)
    n = 800
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    df["price"] = 300_000 + 60_000 * df["x1"] - 20_000 * df["x2"] + rng.normal(0, 20_000, n)
    cfg = make_cfg(model={"name": "houses", "target": "price", "time_column": None, "segments": [],
                          "estimator": "sklearn.linear_model.Ridge"})
    result = train(cfg, store, artifacts, executor, data=df)
    over = result.overfitting
    assert over["relative"] is True and over["metric"] == "rmse"
    assert abs(result.metrics["rmse"] - result.train_metrics["rmse"]) > over["bound"]  # in price units
    assert over["gap"] == pytest.approx(1 - result.train_metrics["rmse"] / result.metrics["rmse"])
    assert over["flagged"] is False


def test_failing_validation_registers_nothing(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, executor: LocalExecutor, churn: pd.DataFrame,
    make_cfg: Any,
) -> None:
    bad = churn.copy()
    bad.loc[bad.index[: len(bad) // 2], "monthly_spend"] = np.nan  # half missing, limit 20%
    cfg = make_cfg()
    with pytest.raises(ValidationFailed, match="missing"):
        train(cfg, store, artifacts, executor, data=bad)
    assert store.list_versions("churn") == [] and store.aliases("churn") == {}
    (run,) = store.list_runs(model="churn")
    assert run.status == "failed" and "missing" in (run.error or "")
    assert run.tags["validation"]["ok"] is False


def test_unknown_estimator_is_a_config_error(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, executor: LocalExecutor, churn: pd.DataFrame,
    make_cfg: Any,
) -> None:
    cfg = make_cfg(model={"estimator": "sklearn.ensemble.RandomForrestClassifier"})
    with pytest.raises(ConfigError, match="did you mean sklearn.ensemble.RandomForestClassifier"):
        train(cfg, store, artifacts, executor, data=churn)
    assert store.list_versions("churn") == []
    assert store.list_runs(model="churn")[0].status == "failed"


def test_overfit_model_is_flagged(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, executor: LocalExecutor, churn: pd.DataFrame,
    make_cfg: Any,
) -> None:
    cfg = make_cfg(model={"estimator": "sklearn.tree.DecisionTreeClassifier"})
    result = train(cfg, store, artifacts, executor, data=churn)
    assert result.train_metrics["accuracy"] == pytest.approx(1.0)
    assert result.overfitting["flagged"] is True and result.overfitting["gap"] > 0.1
    assert result.learning_curve is None  # a single tree has no stages


def test_gate_rejects_below_min_metrics_and_leaves_no_champion(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, executor: LocalExecutor, churn: pd.DataFrame,
    make_cfg: Any,
) -> None:
    cfg = make_cfg(gates={"min_metrics": {"accuracy": 0.99}})
    result = train(cfg, store, artifacts, executor, data=churn)
    assert result.status == "rejected" and result.aliases == []
    assert store.get_version("churn", 1).status == "rejected"
    assert store.get_alias("churn", "champion") is None
    (event,) = store.events(model="churn", kind="thresholds_failed")
    assert "accuracy" in event.reason and "0.99" in event.reason


def test_second_train_keeps_the_champion_and_idempotency_key_prevents_duplicates(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, executor: LocalExecutor, churn: pd.DataFrame,
    make_cfg: Any,
) -> None:
    cfg = make_cfg()
    first = train(cfg, store, artifacts, executor, data=churn)
    second = train(cfg, store, artifacts, executor, data=churn.iloc[100:], idempotency_key="retrain:7")
    assert (first.version, second.version) == (1, 2)
    assert store.get_alias("churn", "champion") == 1 and second.aliases == []
    again = train(cfg, store, artifacts, executor, data=churn.iloc[200:], idempotency_key="retrain:7")
    assert again.version == 2 and again.reused is True
    assert [v.version for v in store.list_versions("churn")] == [1, 2]


def test_warm_start_continues_the_parent(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, executor: LocalExecutor, churn: pd.DataFrame,
    make_cfg: Any,
) -> None:
    cfg = make_cfg(model={"params": {"max_iter": 30}})
    first = train(cfg, store, artifacts, executor, data=churn)
    parent = load_model(artifacts, first.artifact_key)
    n_before = parent[-1].n_iter_
    second = train(cfg, store, artifacts, executor, data=churn.iloc[300:], warm_start_from=parent, parent_version=1)
    child = load_model(artifacts, second.artifact_key)
    assert second.warm_start["used"] is True
    assert child[-1].n_iter_ > n_before and parent[-1].n_iter_ == n_before  # the parent is untouched
    assert store.get_version("churn", 2).lineage["parent_version"] == 1
