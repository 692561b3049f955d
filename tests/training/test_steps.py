"""The pipeline's steps alone: estimators, preprocessing, split, metrics, profile, package."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from modelpilot.config import CostsConfig
from modelpilot.data import resolve_features, synth
from modelpilot.errors import ConfigError, DataError
from modelpilot.metrics import overfit_gap
from modelpilot.training import estimators
from modelpilot.training.evaluate import compute_metrics
from modelpilot.training.preprocess import build_pipeline
from modelpilot.training.profile import Profiler, estimate_cost
from modelpilot.training.split import split_frame


def test_resolve_estimator_by_path_and_default() -> None:
    assert estimators.resolve_estimator("sklearn.ensemble.RandomForestClassifier", "classification") is RandomForestClassifier
    assert estimators.resolve_estimator(None, "regression") is HistGradientBoostingRegressor


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("sklearn.linear_model.LogisticRegresion", "did you mean sklearn.linear_model.LogisticRegression"),
        ("notapackage.Model", r"pip install notapackage"),
        ("RandomForest", "not an import path"),
        ("sklearn.ensemble.RandomForestClassifier", None),
    ],
)
def test_unknown_estimator_paths_name_the_fix(path: str, message: str | None) -> None:
    if message is None:
        estimators.resolve_estimator(path, "classification")
        return
    with pytest.raises(ConfigError, match=message):
        estimators.resolve_estimator(path, "classification")


def test_unknown_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="has no parameter 'n_trees'"):
        estimators.make_estimator("sklearn.ensemble.RandomForestClassifier", "classification", {"n_trees": 3}, 0)


def test_capabilities_and_default_spaces() -> None:
    hgb = estimators.make_estimator(None, "classification", {}, 0)
    assert estimators.is_iterative(hgb) and estimators.iteration_param(hgb) == "max_iter"
    assert estimators.iteration_param(RandomForestClassifier()) == "n_estimators"
    assert not estimators.is_iterative(LogisticRegression())  # warm_start there is a solver's, not growth
    space = estimators.default_space(None, "classification")
    assert space is not None and "learning_rate" in space and space["learning_rate"].log
    assert estimators.default_space("sklearn.tree.DecisionTreeClassifier", "classification") is None


def test_pipeline_encodes_by_model_kind_and_tolerates_unknown_categories() -> None:
    df = synth.customers(300, seed=1)
    spec = resolve_features(df.drop(columns="ts"), _cfg())
    tree = build_pipeline(spec, estimators.make_estimator(None, "classification", {"max_iter": 5}, 0))
    linear = build_pipeline(spec, LogisticRegression(max_iter=200))
    X, y = df[spec.features], df["churned"]
    tree.fit(X, y)
    linear.fit(X, y)
    enc = tree[0].named_transformers_["categorical"][-1]
    assert isinstance(enc, OrdinalEncoder)
    assert isinstance(linear[0].named_transformers_["categorical"][-1], OneHotEncoder)
    odd = X.head(3).copy()
    odd["plan"] = ["never-seen", None, "basic"]
    odd.loc[odd.index[0], "age"] = np.nan
    assert tree.predict_proba(odd).shape == (3, 2) and linear.predict(odd).shape == (3,)


def _cfg(**model: Any) -> Any:
    from modelpilot.config import PilotConfig

    return PilotConfig.model_validate({"model": {"name": "churn", "target": "churned", **model}})


def test_time_split_puts_the_latest_period_in_validation() -> None:
    df = synth.customers(500, seed=2).sample(frac=1.0, random_state=0)  # shuffled rows
    sp = split_frame(df, "churned", "classification", _cfg(time_column="ts"))
    assert sp.method == "time"
    assert df["ts"].iloc[sp.train].max() < df["ts"].iloc[sp.validation].min()
    assert 0.15 < len(sp.validation) / len(df) < 0.25


def test_random_split_is_stratified_for_classification() -> None:
    df = pd.DataFrame({"x": np.arange(200.0), "y": np.r_[np.zeros(180), np.ones(20)].astype(int)})
    sp = split_frame(df, "y", "classification", _cfg(target="y"))
    assert sp.method == "stratified" and df["y"].iloc[sp.validation].sum() == 4


def test_time_split_without_time_column_says_how_to_fix() -> None:
    cfg = _cfg()
    cfg.split.method = "time"
    with pytest.raises(DataError, match="model.time_column is not set"):
        split_frame(pd.DataFrame({"x": range(10), "churned": [0, 1] * 5}), "churned", "classification", cfg)


def test_metrics_agree_with_sklearn_and_gap_is_sign_aware() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    proba = rng.dirichlet(np.ones(3), 300)
    pred = proba.argmax(axis=1)
    m = compute_metrics("classification", y, pred, proba, np.arange(3))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    # rmse: relative to the validation error, (1.5 - 1.0) / 1.5
    assert overfit_gap({"rmse": 1.0}, {"rmse": 1.5}, "rmse", 0.2) == {
        "gap": pytest.approx(1 / 3), "flagged": True, "bound": 0.2, "metric": "rmse", "relative": True}
    assert overfit_gap({"accuracy": 0.9}, {"accuracy": 0.85}, "accuracy", 0.1)["flagged"] is False


def test_profile_counts_stages_and_cost_formula() -> None:
    p = Profiler()
    with p.stage("work"):
        np.linalg.svd(np.random.default_rng(0).normal(size=(300, 300)))
    p.bytes_written = 2_000_000_000
    prof = p.to_dict()
    assert prof["stages"]["work"]["cpu_s"] > 0 and prof["peak_memory_mb"] > 10
    cost = estimate_cost({**prof, "cpu_s": 3600.0, "wall_s": 10.0}, CostsConfig(compute_per_hour=0.5, storage_per_gb_month=0.02))
    assert cost["compute"] == pytest.approx(0.5) and cost["storage"] == pytest.approx(0.04)
    assert cost["total"] == pytest.approx(0.54) and cost["currency"] == "USD"


def test_time_split_takes_the_latest_rows_not_the_latest_span() -> None:
    # old history spread over months, then a burst of logged traffic sharing timestamps:
    # a cut at 80% of the time span would send every recent row to validation
    from modelpilot.config import PilotConfig

    old = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=100, freq="D", tz="UTC"), "y": [0, 1] * 50})
    burst_ts = pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.repeat(np.arange(5), 100), unit="s")
    burst = pd.DataFrame({"ts": burst_ts, "y": [0, 1] * 250})
    frame = pd.concat([old, burst], ignore_index=True)
    cfg = PilotConfig.model_validate(
        {"model": {"name": "m", "target": "y", "time_column": "ts"}, "split": {"validation_fraction": 0.2}}
    )
    split = split_frame(frame, "y", "classification", cfg)
    assert len(split.validation) == 120
    assert frame["ts"].iloc[split.validation].min() >= frame["ts"].iloc[split.train].max()
    assert set(split.validation) == set(range(480, 600))  # the newest rows, ties in arrival order
