from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelpilot.errors import DataError
from modelpilot.monitoring import (
    classification_metrics,
    estimate_performance,
    performance,
    regression_metrics,
)


def test_classification_per_segment_matches_sklearn() -> None:
    y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    p = np.array([0.2, 0.9, 0.4, 0.3, 0.8, 0.6, 0.7, 0.55])
    pred = (p > 0.5).astype(int)
    seg = pd.DataFrame({"region": ["n", "n", "n", "n", "s", "s", "s", "s"]})
    out = performance(y, pred, task="classification", proba=p, classes=[0, 1], segments=seg)
    assert out["overall"]["n"] == 8
    assert out["overall"]["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["overall"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert out["overall"]["f1"] == pytest.approx(skm.f1_score(y, pred))
    proba2 = np.column_stack([1 - p, p])
    assert out["overall"]["log_loss"] == pytest.approx(skm.log_loss(y, proba2))
    south = out["segments"]["region"]["s"]
    assert south["n"] == 4
    assert south["accuracy"] == pytest.approx(skm.accuracy_score(y[4:], pred[4:]))
    assert south["roc_auc"] == pytest.approx(skm.roc_auc_score(y[4:], p[4:]))
    assert out["segments"]["region"]["n"]["f1"] == pytest.approx(skm.f1_score(y[:4], pred[:4]))


def test_multiclass_and_string_labels() -> None:
    y = np.array(["a", "b", "c", "a", "b", "c"])
    proba = np.array([[.7, .2, .1], [.1, .8, .1], [.2, .2, .6], [.3, .4, .3], [.2, .5, .3],
                      [.1, .1, .8]])
    pred = np.array(["a", "b", "c", "b", "b", "c"])
    m = classification_metrics(y, pred, proba, classes=["a", "b", "c"])
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert "roc_auc" not in classification_metrics(["a", "a"], ["a", "b"], [[.6, .4, 0],
                                                   [.4, .6, 0]], classes=["a", "b", "c"])


def test_regression_per_segment_and_min_rows() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    pred = np.array([1.1, 1.8, 3.3, 3.6, 5.5, 6.0])
    seg = pd.DataFrame({"g": ["a", "a", "a", "a", "a", "b"]})
    out = performance(y, pred, task="regression", segments=seg, min_rows=2)
    assert out["overall"]["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert out["overall"]["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert out["overall"]["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert out["segments"]["g"]["a"]["r2"] == pytest.approx(skm.r2_score(y[:5], pred[:5]))
    assert out["segments"]["g"]["b"] == {"n": 1}
    assert regression_metrics([1.0], [2.0]) == {"rmse": 1.0, "mae": 1.0}


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match="task='ranking'"):
        performance([1], [1], task="ranking")
    with pytest.raises(DataError, match="got 2 labels but 3"):
        performance([1, 0], [1, 0, 1], task="classification")
    with pytest.raises(DataError, match="proba was given without classes"):
        classification_metrics([0, 1], [0, 1], [0.2, 0.8])
    with pytest.raises(DataError, match=r"must lie in \[0, 1\]"):
        estimate_performance([0.5, 1.5])


def calibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(2, 2, n)
    return p, (rng.random(n) < p).astype(int)  # the label really is positive w.p. p


def test_estimated_accuracy_matches_actual_on_calibrated_data(rng) -> None:  # type: ignore[no-untyped-def]
    p, y = calibrated(rng, 50_000)
    est = estimate_performance(p, classes=[0, 1])
    actual = skm.accuracy_score(y, (p > 0.5).astype(int))
    assert est["expected_accuracy"] == pytest.approx(actual, abs=0.02)
    assert est["expected_roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=0.02)
    assert est["n"] == 50_000


def test_expected_auc_on_tied_scores() -> None:
    # every score equal: no pair is ordered, so the expected AUC is exactly one half
    assert estimate_performance(np.full(10, 0.3))["expected_roc_auc"] == pytest.approx(0.5)


def test_estimate_is_wrong_under_concept_drift(rng) -> None:  # type: ignore[no-untyped-def]
    # the documented failure: P(y|x) changes (here the relation flips for 40% of rows),
    # the model's probabilities do not, so the estimate stays high while accuracy falls
    p, y = calibrated(rng, 50_000)
    flipped = np.where(rng.random(y.size) < 0.4, 1 - y, y)
    est = estimate_performance(p)["expected_accuracy"]
    actual = skm.accuracy_score(flipped, (p > 0.5).astype(int))
    assert est - actual > 0.1
