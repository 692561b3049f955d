"""Split conformal: coverage holds on exchangeable rows and the monitor sees it break."""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot.errors import DataError
from modelpilot.monitoring.conformal import coverage, fit_conformal, intervals, prediction_sets


def regression(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(shift, 1.0, n)
    return 2 * x + rng.normal(size=n) * (0.3 + np.abs(x)), 2 * x  # truth, prediction


@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_regression_intervals_cover_as_promised_and_the_drop_is_detected(rng, alpha) -> None:  # type: ignore[no-untyped-def]
    y_val, pred_val = regression(rng, 3000)
    conf = fit_conformal(y_val, predictions=pred_val, alpha=alpha)
    y, pred = regression(rng, 20_000)
    got = coverage(conf, y, predictions=pred)
    assert got["coverage"] == pytest.approx(1 - alpha, abs=0.015) and got["p_value"] > 0.01
    lo, hi = intervals(conf, pred)
    assert np.all(hi - lo == pytest.approx(got["mean_width"]))
    # traffic moves to where the errors are larger: the intervals no longer hold
    y2, pred2 = regression(rng, 2000, shift=2.0)
    shifted = coverage(conf, y2, predictions=pred2)
    assert shifted["coverage"] < 1 - alpha - 0.1 and shifted["p_value"] < 1e-6


def test_classification_sets_cover_and_grow_with_uncertainty(rng) -> None:  # type: ignore[no-untyped-def]
    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(size=(n, 3)) * 1.5
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.array(["a", "b", "c"])[(rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
        return y, p

    y_val, p_val = draw(3000)
    conf = fit_conformal(y_val, proba=p_val, classes=["a", "b", "c"], alpha=0.1)
    y, p = draw(20_000)
    got = coverage(conf, y, proba=p, classes=["a", "b", "c"])
    assert got["coverage"] == pytest.approx(0.9, abs=0.015)
    sets = prediction_sets(conf, p)
    assert 1.0 < got["mean_set_size"] < 3.0 and sets.any(axis=1).mean() > 0.95
    # a confident row gets a single class, an uncertain one several
    assert prediction_sets(conf, [[0.98, 0.01, 0.01], [0.34, 0.33, 0.33]]).sum(axis=1).tolist()[0] == 1


def test_bad_input_is_named() -> None:
    with pytest.raises(DataError, match="strictly between"):
        fit_conformal([1.0], predictions=[1.0], alpha=1.5)
    with pytest.raises(DataError, match="too few"):
        fit_conformal([1.0, 2.0], predictions=[1.0, 2.0], alpha=0.1)
    with pytest.raises(DataError, match="not both"):
        fit_conformal([1.0])
    with pytest.raises(DataError, match="without classes"):
        fit_conformal(["a"], proba=[[1.0]])
