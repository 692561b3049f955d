"""Probability calibration for label-free performance estimates, stored as JSON.

Confidence-based performance estimation (:func:`~modelpilot.monitoring.estimate_performance`)
reads a row scored 0.8 as "positive 80% of the time". Few models are calibrated like that
out of the box: a random forest squeezes scores towards the middle, naive Bayes pushes them
to 0 and 1. :func:`fit_calibration` maps the champion's probabilities to calibrated ones
on its validation rows (out-of-sample, like live traffic) with scikit-learn's isotonic
regression or a sigmoid (Platt) fit; the map is a small JSON dict stored in the version's
reference profile (``reference["calibration"]``), so monitoring applies it to live scores
without loading anything else.

Layout (``format`` = ``"modelpilot.calibration/1"``)::

    {"format": ..., "method": "isotonic" | "sigmoid", "rows": int,
     "maps": [one map per calibrated column]}

Binary models have one map (for the positive class, column 1); multi-class models have one
one-vs-rest map per class, and the calibrated columns are renormalised to sum to 1 (as
scikit-learn's ``CalibratedClassifierCV`` does). An isotonic map is ``{"x": [...], "y":
[...]}`` (a non-decreasing step function, linearly interpolated and clipped at the ends,
exactly as ``IsotonicRegression.predict``); a sigmoid map is ``{"a": float, "b": float}``
with p' = 1 / (1 + exp(−(a·logit(p) + b))).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from modelpilot.errors import DataError

CALIBRATION_FORMAT = "modelpilot.calibration/1"
CALIBRATION_METHODS = ("auto", "isotonic", "sigmoid")
# isotonic regression has one free step per distinct score and overfits small samples;
# below this many validation rows the two-parameter sigmoid is the safer map
ISOTONIC_MIN_ROWS = 1000
_CLIP = 1e-6


def proba_matrix(proba: ArrayLike) -> NDArray[np.float64]:
    """``predict_proba`` output as an n × classes float matrix (a 1-D positive-class
    probability becomes two columns).

    Raises:
        DataError: values outside [0, 1].
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1):
        raise DataError("probabilities must lie in [0, 1]; pass predict_proba output")
    return p


def fit_calibration(
    proba: ArrayLike, y: ArrayLike, classes: ArrayLike, *, method: str = "auto"
) -> dict[str, Any]:
    """Fit the map from the model's probabilities to calibrated ones.

    Args:
        proba: the model's ``predict_proba`` on held-out rows (n × classes, or 1-D for the
            positive class of a binary model).
        y: the true labels of those rows.
        classes: the class labels in ``proba`` column order (``model.classes_``).
        method: ``"isotonic"``, ``"sigmoid"`` or ``"auto"`` (isotonic from
            :data:`ISOTONIC_MIN_ROWS` rows on, sigmoid below).

    Returns:
        The JSON-serialisable calibration (see the module docstring).

    Raises:
        DataError: unknown method, lengths that differ, or a column count that does not
            match ``classes``.

    Example:
        >>> # 0.7 and 0.8 hold one positive and one negative: both map to 0.5
        >>> cal = fit_calibration([0.9, 0.8, 0.7, 0.2], [1, 0, 1, 0], [0, 1], method="isotonic")
        >>> apply_calibration(cal, [0.75])[:, 1].round(3).tolist()
        [0.5]
    """
    if method not in CALIBRATION_METHODS:
        raise DataError(f"calibration method {method!r} is unknown; use one of {CALIBRATION_METHODS}")
    p = proba_matrix(proba)
    labels = np.asarray(y)
    cls = np.asarray(classes)
    if labels.shape[0] != p.shape[0]:
        raise DataError(f"got {p.shape[0]} probability rows but {labels.shape[0]} labels; align them")
    if cls.size != p.shape[1]:
        raise DataError(f"proba has {p.shape[1]} columns but {cls.size} classes were given")
    chosen = method if method != "auto" else ("isotonic" if p.shape[0] >= ISOTONIC_MIN_ROWS else "sigmoid")
    targets = [1] if cls.size == 2 else list(range(cls.size))
    maps = [_fit_map(p[:, k], (labels == cls[k]).astype(np.float64), chosen) for k in targets]
    return {"format": CALIBRATION_FORMAT, "method": chosen, "rows": int(p.shape[0]), "maps": maps}


def apply_calibration(calibration: dict[str, Any] | None, proba: ArrayLike) -> NDArray[np.float64]:
    """Calibrated probabilities (n × classes); the input as a matrix when ``calibration`` is None.

    Raises:
        DataError: the calibration was fitted for another number of classes.
    """
    p = proba_matrix(proba)
    if not calibration:
        return p
    maps = calibration["maps"]
    if len(maps) == 1:
        if p.shape[1] != 2:
            raise DataError(f"the calibration is for a binary model but proba has {p.shape[1]} columns")
        pos = _apply_map(maps[0], p[:, 1])
        return np.column_stack([1.0 - pos, pos])
    if len(maps) != p.shape[1]:
        raise DataError(f"the calibration has {len(maps)} classes but proba has {p.shape[1]} columns")
    out = np.column_stack([_apply_map(m, p[:, k]) for k, m in enumerate(maps)])
    total = out.sum(axis=1, keepdims=True)
    # a row every one-vs-rest map sends to 0 carries no information: spread it evenly
    return np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


def _fit_map(score: NDArray[np.float64], target: NDArray[np.float64], method: str) -> dict[str, Any]:
    finite = np.isfinite(score)
    s, t = score[finite], target[finite]
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, t)
        return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if np.unique(t).size < 2:  # one class only: the best constant map
        return {"a": 0.0, "b": float(_logit(np.array([t.mean() if t.size else 0.5]))[0])}
    lr = LogisticRegression(C=1e6).fit(_logit(s)[:, None], t)
    return {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def _apply_map(m: dict[str, Any], score: NDArray[np.float64]) -> NDArray[np.float64]:
    if "x" in m:
        return np.interp(score, np.asarray(m["x"], dtype=np.float64), np.asarray(m["y"], dtype=np.float64))
    z = float(m["a"]) * _logit(score) + float(m["b"])
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
    return out


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    q = np.clip(p, _CLIP, 1.0 - _CLIP)
    out: NDArray[np.float64] = np.log(q / (1.0 - q))
    return out
