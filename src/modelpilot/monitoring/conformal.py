"""Split conformal prediction: intervals (regression) and prediction sets (classification)
with a coverage guarantee, calibrated on the validation rows; coverage monitored on labels.

Calibration (:func:`fit_conformal`) scores each validation row by how wrong the model was —
the absolute residual |y − ŷ| for a regressor, 1 − p̂(true class) for a classifier — and keeps
the ⌈(n + 1)(1 − alpha)⌉-th smallest score, q. For a new row exchangeable with the
validation rows, ``[ŷ − q, ŷ + q]`` holds y, and the set of classes with p̂ ≥ 1 − q holds the
true class, with probability at least 1 − alpha (scikit-learn and NumPy only; no MAPIE).

The guarantee is marginal and rests on exchangeability: under drift it breaks, which makes
the **empirical coverage on labelled traffic** (:func:`coverage`) a monitoring signal. A
one-sided binomial test says whether the coverage fell below 1 − alpha beyond chance.
Stored in the reference profile as ``conformal`` (``format`` = ``"modelpilot.conformal/1"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from modelpilot.errors import DataError
from modelpilot.monitoring.calibration import proba_matrix

CONFORMAL_FORMAT = "modelpilot.conformal/1"


def fit_conformal(
    y: ArrayLike,
    *,
    predictions: ArrayLike | None = None,
    proba: ArrayLike | None = None,
    classes: Sequence[Any] | None = None,
    alpha: float = 0.1,
) -> dict[str, Any]:
    """Calibrate on held-out rows: ``predictions`` for a regressor, ``proba`` + ``classes``
    for a classifier.

    Raises:
        DataError: alpha outside (0, 1), lengths that differ, neither or both of
            predictions/proba, or too few rows for the level (n < 1/alpha − 1).

    Example:
        >>> conf = fit_conformal([1.0, 2.0, 3.0, 4.0], predictions=[1.5, 2.0, 2.0, 4.5], alpha=0.25)
        >>> conf["q"], intervals(conf, [10.0])
        (1.0, (array([9.]), array([11.])))
    """
    if not 0 < alpha < 1:
        raise DataError(f"alpha={alpha}: the miscoverage level must lie strictly between 0 and 1")
    if (predictions is None) == (proba is None):
        raise DataError("pass predictions (regression) or proba with classes (classification), not both")
    yt = np.asarray(y)
    if proba is not None:
        if classes is None:
            raise DataError("proba was given without classes; pass classes in predict_proba order")
        p = proba_matrix(proba)
        _same(yt, p)
        index = _class_index(yt, classes)
        known = index >= 0
        scores = np.ones(yt.size)  # a class the model does not know was predicted with p = 0
        scores[known] = 1.0 - p[np.flatnonzero(known), index[known]]
        task = "classification"
    else:
        pred = np.asarray(predictions, dtype=np.float64)
        _same(yt, pred)
        scores = np.abs(yt.astype(np.float64) - pred)
        task = "regression"
    scores = np.sort(scores[np.isfinite(scores)])
    n = scores.size
    rank = int(np.ceil((n + 1) * (1 - alpha)))
    if rank > n:
        raise DataError(f"{n} calibration rows are too few for alpha={alpha}: need at least {int(np.ceil(1 / alpha)) - 1}")
    return {"format": CONFORMAL_FORMAT, "task": task, "alpha": alpha, "q": float(scores[rank - 1]), "rows": n}


def intervals(conformal: dict[str, Any], predictions: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lower and upper bounds ``ŷ ∓ q`` of the prediction intervals."""
    pred = np.asarray(predictions, dtype=np.float64)
    return pred - conformal["q"], pred + conformal["q"]


def prediction_sets(conformal: dict[str, Any], proba: ArrayLike) -> NDArray[np.bool_]:
    """Membership matrix (n × classes): class k is in row i's set when p̂_ik ≥ 1 − q."""
    out: NDArray[np.bool_] = proba_matrix(proba) >= 1.0 - conformal["q"] - 1e-12
    return out


def coverage(
    conformal: dict[str, Any],
    y: ArrayLike,
    *,
    predictions: ArrayLike | None = None,
    proba: ArrayLike | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Empirical coverage on labelled rows and whether it fell short of the promise.

    Returns:
        ``{"n", "coverage", "target" (1 − alpha), "p_value"}``: the one-sided binomial
        p-value of seeing this few covered rows if the true coverage were the target;
        ``mean_width`` (regression) or ``mean_set_size`` (classification).

    Raises:
        DataError: the wrong inputs for the calibration's task, or lengths that differ.
    """
    yt = np.asarray(y)
    target = 1.0 - float(conformal["alpha"])
    if conformal["task"] == "regression":
        if predictions is None:
            raise DataError("a regression calibration needs predictions")
        lo, hi = intervals(conformal, predictions)
        _same(yt, lo)
        covered = (yt.astype(np.float64) >= lo) & (yt.astype(np.float64) <= hi)
        extra = {"mean_width": 2.0 * float(conformal["q"])}
    else:
        if proba is None or classes is None:
            raise DataError("a classification calibration needs proba and classes")
        sets = prediction_sets(conformal, proba)
        _same(yt, sets)
        index = _class_index(yt, classes)
        covered = np.zeros(yt.size, dtype=bool)
        known = index >= 0
        covered[known] = sets[np.flatnonzero(known), index[known]]
        extra = {"mean_set_size": float(sets.sum(axis=1).mean()) if yt.size else 0.0}
    n = int(yt.size)
    hits = int(covered.sum())
    p_value = float(stats.binom.cdf(hits, n, target)) if n else 1.0
    return {"n": float(n), "coverage": hits / n if n else float("nan"), "target": target, "p_value": p_value, **extra}


def _class_index(y: NDArray[Any], classes: Sequence[Any]) -> NDArray[np.intp]:
    lookup = {str(c): i for i, c in enumerate(classes)}
    return np.array([lookup.get(str(v), -1) for v in y], dtype=np.intp)


def _same(y: NDArray[Any], other: NDArray[Any]) -> None:
    if len(y) != len(other):
        raise DataError(f"got {len(y)} labels but {len(other)} predictions; align them")
