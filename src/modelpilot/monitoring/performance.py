"""Model performance: measured from labels (overall and per segment), or estimated
without labels from the model's own probabilities.

Estimated performance (CBPE, "confidence-based performance estimation", on probabilities
calibrated on the validation rows: :mod:`modelpilot.monitoring.calibration`) assumes the
predicted probabilities are **calibrated** on the live data: a row scored 0.8 is positive
80% of the time. Then the expected accuracy of predicting the top class is the mean top
probability, and the expected ROC AUC follows from treating each row as a fractional
positive (weight p) and negative (weight 1 − p). The assumption survives covariate shift
(P(x) changes, P(y|x) does not) but **not concept drift**: when P(y|x) changes the model
is confidently wrong and the estimate stays high while the real accuracy falls. Only
labels catch that; the estimate is a stopgap while labels are delayed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn import metrics as skm

from modelpilot.errors import DataError
from modelpilot.monitoring.calibration import apply_calibration, proba_matrix

CLASSIFICATION_METRICS = ("accuracy", "roc_auc", "f1", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")


def classification_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    proba: ArrayLike | None = None,
    *,
    classes: ArrayLike | None = None,
    only: Collection[str] | None = None,
) -> dict[str, float]:
    """Accuracy and F1 (binary: of ``classes[1]``; multi-class: macro); with ``proba`` also
    ROC AUC (one-vs-rest for multi-class) and log loss.

    ``proba`` is ``predict_proba`` output in ``classes`` order (or the positive-class column
    for binary). ROC AUC is left out when ``y_true`` holds a single class (it is undefined).
    ``only`` limits the work to the metrics named (monitoring measures every segment on
    its primary metric alone). Accuracy and F1 are counted with NumPy (the same values as
    scikit-learn's, without its input checks, which cost more than the counting on the
    small slices a monitoring pass measures).

    Raises:
        DataError: lengths differ, or ``proba`` is given without ``classes``.
    """
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    _same_length(yt, yp)
    if yt.size == 0:
        return {}
    wanted = set(CLASSIFICATION_METRICS if only is None else only)
    labels = np.asarray(classes) if classes is not None else np.unique(np.concatenate([yt, yp]))
    out: dict[str, float] = {}
    if "accuracy" in wanted:
        out["accuracy"] = float(np.mean(yt == yp))
    if "f1" in wanted:
        out["f1"] = _f1(yt, yp, labels)
    if proba is None or not wanted & {"log_loss", "roc_auc"}:
        return out
    if classes is None:
        raise DataError("proba was given without classes; pass classes in predict_proba order")
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    _same_length(yt, p)
    if "log_loss" in wanted:
        out["log_loss"] = float(skm.log_loss(yt, p, labels=labels))
    if "roc_auc" in wanted and np.unique(yt).size > 1:
        if labels.size == 2:
            out["roc_auc"] = float(skm.roc_auc_score(yt == labels[1], p[:, 1]))
        elif np.isin(labels, yt).all():
            out["roc_auc"] = float(skm.roc_auc_score(yt, p, multi_class="ovr", labels=labels))
    return out


def _f1(yt: np.ndarray, yp: np.ndarray, labels: np.ndarray) -> float:
    """F1 of ``labels[1]`` (binary) or the macro F1 over ``labels``; 0 where undefined."""

    def one(label: Any) -> float:
        t, p = yt == label, yp == label
        tp = float(np.sum(t & p))
        denominator = 2 * tp + float(np.sum(~t & p)) + float(np.sum(t & ~p))
        return 2 * tp / denominator if denominator else 0.0

    if labels.size == 2:
        return one(labels[1])
    return float(np.mean([one(label) for label in labels])) if labels.size else 0.0


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike, *, only: Collection[str] | None = None) -> dict[str, float]:
    """RMSE, MAE and R² (R² left out below two rows, where it is undefined); ``only`` limits
    them to the metrics named."""
    yt, yp = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    _same_length(yt, yp)
    if yt.size == 0:
        return {}
    wanted = set(REGRESSION_METRICS if only is None else only)
    out = {}
    if "rmse" in wanted:
        out["rmse"] = float(skm.root_mean_squared_error(yt, yp))
    if "mae" in wanted:
        out["mae"] = float(skm.mean_absolute_error(yt, yp))
    if "r2" in wanted and yt.size >= 2:
        out["r2"] = float(skm.r2_score(yt, yp))
    return out


def performance(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    task: str,
    proba: ArrayLike | None = None,
    classes: ArrayLike | None = None,
    segments: pd.DataFrame | None = None,
    min_rows: int = 1,
    segment_metrics: Collection[str] | None = None,
) -> dict[str, Any]:
    """Metrics from labels, overall and per value of each segment column.

    Args:
        y_true, y_pred: labels and predictions (same length).
        task: "classification" or "regression".
        proba: classification probabilities (see :func:`classification_metrics`).
        classes: class labels in ``proba`` column order.
        segments: segment columns aligned row by row with the labels (index ignored).
        min_rows: segments with fewer rows report only their ``n``.
        segment_metrics: measure segments on these metrics only (default: all).

    Returns:
        ``{"overall": {metric: value, "n": rows}, "segments": {column: {value: {...}}}}``
        with segment values as strings.

    Raises:
        DataError: unknown task, or inputs of different lengths.
    """
    if task not in ("classification", "regression"):
        raise DataError(f"task={task!r}; use 'classification' or 'regression'")
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    p = None if proba is None else np.asarray(proba, dtype=np.float64)

    def measure(idx: NDArray[np.intp] | slice, only: Collection[str] | None = None) -> dict[str, Any]:
        n = int(yt[idx].shape[0])
        if n < min_rows:
            return {"n": n}
        if task == "classification":
            m = classification_metrics(yt[idx], yp[idx], None if p is None else p[idx],
                                       classes=classes, only=only)
        else:
            m = regression_metrics(yt[idx], yp[idx], only=only)
        return {**m, "n": n}

    out: dict[str, Any] = {"overall": measure(slice(None)), "segments": {}}
    if segments is not None:
        _same_length(yt, segments)
        for column in segments.columns:
            # group ROW POSITIONS by segment value; one metrics call per segment, not per row
            groups = pd.Series(np.arange(len(yt))).groupby(
                segments[column].to_numpy(), dropna=False, sort=True
            ).indices
            out["segments"][str(column)] = {str(v): measure(idx, segment_metrics) for v, idx in groups.items()}
    return out


def estimate_performance(
    proba: ArrayLike,
    *,
    classes: ArrayLike | None = None,
    calibration: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Expected performance without labels, from (calibrated) probabilities (CBPE).

    The model predicts the top class of its own ``proba``; ``calibration`` (from
    :func:`~modelpilot.monitoring.calibration.fit_calibration`, stored in the reference
    profile) turns ``proba`` into probabilities that hold on held-out rows, and the
    estimates treat row i as belonging to class k with calibrated probability q_ik.

    Args:
        proba: ``predict_proba`` output (n × classes) or the positive-class probability (1-D).
        classes: class labels in column order (only checked for the column count).
        calibration: the version's calibration; None trusts ``proba`` as it is.

    Returns:
        ``n``; ``expected_accuracy`` = mean calibrated probability of the predicted class;
        ``expected_f1`` (of the positive class for binary models, macro over classes
        otherwise) from the expected counts TP = Σ q [predicted k], FP = Σ (1 − q)
        [predicted k], FN = Σ q [not predicted k]; ``expected_roc_auc``: the AUC expected
        when row i is positive with probability q_i, ranking rows by the model's own score
        s_i: Σ_{i≠j} q_i (1 − q_j) [s_i > s_j] / Σ_{i≠j} q_i (1 − q_j), ties counted half
        (one-vs-rest macro average for multi-class).

    Raises:
        DataError: probabilities outside [0, 1], or a column count that does not match
            ``classes`` or the calibration.

    Example:
        >>> estimate_performance([0.9, 0.8, 0.1])["expected_accuracy"]
        0.8666666666666667
    """
    raw = proba_matrix(proba)
    if classes is not None and len(np.asarray(classes)) != raw.shape[1]:
        raise DataError(
            f"proba has {raw.shape[1]} columns but {len(np.asarray(classes))} classes were given"
        )
    out: dict[str, float] = {"n": float(raw.shape[0])}
    if raw.shape[0] == 0:
        return out
    q = apply_calibration(calibration, raw)
    predicted = raw.argmax(axis=1)
    rows = np.arange(raw.shape[0])
    out["expected_accuracy"] = float(np.mean(q[rows, predicted]))
    targets = [1] if raw.shape[1] == 2 else range(raw.shape[1])
    f1s, aucs = [], []
    for k in targets:
        hit = predicted == k
        tp, fp, fn = float(q[hit, k].sum()), float((1.0 - q[hit, k]).sum()), float(q[~hit, k].sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0)
        aucs.append(_expected_auc(raw[:, k], q[:, k]))
    out["expected_f1"] = float(np.mean(f1s))
    if all(a is not None for a in aucs):
        out["expected_roc_auc"] = float(np.mean([a for a in aucs if a is not None]))
    return out


def _expected_auc(s: NDArray[np.float64], q: NDArray[np.float64]) -> float | None:
    # row i is positive w.p. q_i and ranked by s_i; sort once, then for each row the
    # negative mass strictly below it (cumsum) plus half the tied negative mass
    order = np.argsort(s, kind="stable")
    ss, pos = s[order], q[order]
    neg = 1.0 - pos
    uniq, start, counts = np.unique(ss, return_index=True, return_counts=True)
    neg_by_value = np.add.reduceat(neg, start)
    below = np.concatenate([[0.0], np.cumsum(neg_by_value)[:-1]])
    idx = np.repeat(np.arange(uniq.size), counts)
    # ties: the other tied rows' negative mass counts half (a row is never paired with itself)
    wins = pos * (below[idx] + 0.5 * (neg_by_value[idx] - neg))
    denom = pos.sum() * neg.sum() - float(np.sum(pos * neg))  # exclude i == j pairs
    return float(wins.sum() / denom) if denom > 0 else None


def _same_length(a: Any, b: Any) -> None:
    if len(a) != len(b):
        raise DataError(f"got {len(a)} labels but {len(b)} predictions/rows; align them")
