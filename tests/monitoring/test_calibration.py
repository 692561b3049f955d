"""Calibrated label-free estimates: probability calibration (classification) and the
residual model (regression), checked against the truth under covariate shift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.tree import DecisionTreeRegressor

from modelpilot.errors import DataError
from modelpilot.monitoring import estimate_performance
from modelpilot.monitoring.calibration import apply_calibration, fit_calibration
from modelpilot.monitoring.errormodel import estimate_error, fit_error_model, predict_errors


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def binary_world(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """P(y=1|x) = sigmoid(2x); the model is under-confident (scores sigmoid(0.6x), like a
    forest). The score is monotone in x, so calibration on reference rows holds under any
    shift of x (covariate shift)."""
    x = rng.normal(shift, 1.0, n)
    y = (rng.random(n) < sigmoid(2 * x)).astype(int)
    return sigmoid(0.6 * x), y


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_brings_the_estimate_within_a_point_under_covariate_shift(rng, method) -> None:  # type: ignore[no-untyped-def]
    p_val, y_val = binary_world(rng, 20_000, 0.0)
    cal = fit_calibration(p_val, y_val, [0, 1], method=method)
    assert cal["method"] == method
    p, y = binary_world(rng, 100_000, 0.8)
    pred = (p > 0.5).astype(int)
    truth = {"accuracy": skm.accuracy_score(y, pred), "roc_auc": skm.roc_auc_score(y, p), "f1": skm.f1_score(y, pred)}
    raw = estimate_performance(p, classes=[0, 1])
    est = estimate_performance(p, classes=[0, 1], calibration=json.loads(json.dumps(cal)))
    # the uncalibrated estimate misses by several points; the calibrated one does not
    assert abs(raw["expected_accuracy"] - truth["accuracy"]) > 0.05
    for metric, value in truth.items():
        assert est[f"expected_{metric}"] == pytest.approx(value, abs=0.01), metric


def test_multiclass_calibration_fixes_an_overconfident_model(rng) -> None:  # type: ignore[no-untyped-def]
    def world(n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(shift, 1.0, n)
        logits = np.column_stack([-1.5 * x, np.zeros(n), 1.5 * x])
        true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = (rng.random(n)[:, None] > np.cumsum(true, axis=1)).sum(axis=1)
        model = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)  # too sharp
        return model, y

    p_val, y_val = world(20_000, 0.0)
    cal = fit_calibration(p_val, y_val, [0, 1, 2])
    assert cal["method"] == "isotonic" and len(cal["maps"]) == 3
    q = apply_calibration(cal, p_val)
    assert np.allclose(q.sum(axis=1), 1.0)
    p, y = world(60_000, 0.7)
    pred = p.argmax(axis=1)
    truth = {"accuracy": skm.accuracy_score(y, pred), "f1": skm.f1_score(y, pred, average="macro"),
             "roc_auc": skm.roc_auc_score(y, p, multi_class="ovr")}
    raw = estimate_performance(p)
    est = estimate_performance(p, calibration=cal)
    assert raw["expected_accuracy"] - truth["accuracy"] > 0.05
    for metric, value in truth.items():
        assert est[f"expected_{metric}"] == pytest.approx(value, abs=0.015), metric


def test_auto_picks_sigmoid_on_few_rows_and_bad_input_is_named(rng) -> None:  # type: ignore[no-untyped-def]
    p, y = binary_world(rng, 300, 0.0)
    assert fit_calibration(p, y, [0, 1])["method"] == "sigmoid"
    with pytest.raises(DataError, match="unknown"):
        fit_calibration(p, y, [0, 1], method="beta")
    with pytest.raises(DataError, match="labels"):
        fit_calibration(p, y[:-1], [0, 1])
    with pytest.raises(DataError, match="binary model"):
        apply_calibration(fit_calibration(p, y, [0, 1]), np.full((2, 3), 1 / 3))


def regression_world(rng: np.random.Generator, n: int, shift: float) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The model predicts 2x well; its error grows with |x| and is larger in city "b"."""
    X = pd.DataFrame({"x": rng.normal(shift, 1.0, n), "city": rng.choice(["a", "b"], n, p=[0.7, 0.3])})
    spread = 0.2 + 0.5 * np.abs(X["x"].to_numpy()) + np.where(X["city"] == "b", 0.5, 0.0)
    y = 2 * X["x"].to_numpy() + rng.normal(0.0, 1.0, n) * spread
    return X, y, 2 * X["x"].to_numpy()


def test_error_model_follows_the_error_under_covariate_shift(rng) -> None:  # type: ignore[no-untyped-def]
    X_val, y_val, pred_val = regression_world(rng, 10_000, 0.0)
    model = json.loads(json.dumps(fit_error_model(X_val, y_val, pred_val, numeric=["x"], categorical=["city"])))
    X, y, pred = regression_world(rng, 50_000, 1.0)
    true_rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
    true_mae = float(np.mean(np.abs(y - pred)))
    naive = float(np.sqrt(np.mean((y_val - pred_val) ** 2)))
    est = estimate_error(model, X, pred)
    assert true_rmse / naive > 1.2  # the shift really made the model worse
    assert est["expected_rmse"] == pytest.approx(true_rmse, rel=0.05)
    assert est["expected_mae"] == pytest.approx(true_mae, rel=0.05)


def test_error_model_tree_matches_scikit_learn_and_tolerates_missing_and_unseen(rng) -> None:  # type: ignore[no-untyped-def]
    X, y, pred = regression_world(rng, 3000, 0.0)
    X.loc[::7, "x"] = np.nan
    model = fit_error_model(X, y, pred, numeric=["x"], categorical=["city"])
    # rebuild the same tree with scikit-learn and compare leaf values row by row
    design = np.column_stack([X["x"].to_numpy(), (X["city"] == "b").to_numpy(np.float64), pred])
    resid = y - pred
    ok = np.isfinite(resid)
    tree = DecisionTreeRegressor(max_depth=8, min_samples_leaf=30, random_state=0)
    tree.fit(design[ok], np.column_stack([np.abs(resid), resid**2])[ok])
    assert model["categories"]["city"] == ["a", "b"]
    np.testing.assert_allclose(predict_errors(model, X, pred), tree.predict(design), rtol=1e-9)
    unseen = pd.DataFrame({"x": [0.0, np.nan], "city": ["zzz", None]})
    assert np.isfinite(predict_errors(model, unseen, np.zeros(2))).all()
    with pytest.raises(DataError, match="city"):
        predict_errors(model, X[["x"]], pred)
    with pytest.raises(DataError, match="at least 20"):
        fit_error_model(X.head(5), y[:5], pred[:5], numeric=["x"], categorical=["city"])
