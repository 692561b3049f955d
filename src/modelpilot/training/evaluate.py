"""Metrics, the train/validation gap, per-segment metrics, learning curves, importance.

Every metric is a function of ``(y_true, predictions, probabilities, classes)`` in the
:data:`METRICS` registry with its direction; ``modelpilot.metrics`` is the one place that
knows ``rmse``, ``mae`` and ``log_loss`` are errors. A metric that is undefined on the
data (ROC AUC with one class present) is left out rather than reported as NaN, which
JSON cannot carry.

Example::

    >>> import numpy as np
    >>> m = compute_metrics("regression", np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    >>> m["mae"], lower_is_better("mae"), lower_is_better("r2")
    (0.5, True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from modelpilot.metrics import lower_is_better

MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None], float | None]

def _accuracy(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None) -> float:
    return float(skm.accuracy_score(y, pred))


def _roc_auc(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None) -> float | None:
    if proba is None or classes is None or len(np.unique(y)) < 2:
        return None
    if len(classes) == 2:
        return float(skm.roc_auc_score(y == classes[1], proba[:, 1]))
    present = np.isin(classes, y)
    if present.sum() < len(classes):
        return None  # one-vs-rest needs every class present in y
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))


def _f1(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None) -> float:
    if classes is not None and len(classes) == 2:
        return float(skm.f1_score(y, pred, pos_label=classes[1], zero_division=0.0))
    return float(skm.f1_score(y, pred, average="macro", labels=classes, zero_division=0.0))


def _log_loss(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None) -> float | None:
    if proba is None or classes is None:
        return None
    return float(skm.log_loss(y, np.clip(proba, 1e-15, 1.0), labels=classes))


def _rmse(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None) -> float:
    return float(skm.root_mean_squared_error(y, pred))


def _mae(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None) -> float:
    return float(skm.mean_absolute_error(y, pred))


def _r2(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None) -> float | None:
    return float(skm.r2_score(y, pred)) if len(y) >= 2 else None


METRICS: dict[str, dict[str, MetricFn]] = {
    "classification": {"accuracy": _accuracy, "roc_auc": _roc_auc, "f1": _f1, "log_loss": _log_loss},
    "regression": {"rmse": _rmse, "mae": _mae, "r2": _r2},
}


def compute_metrics(
    task: str,
    y_true: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, float]:
    """Every metric of ``task`` (or those in ``only``) that is defined on this data."""
    out: dict[str, float] = {}
    for name, fn in METRICS[task].items():
        if only is not None and name not in only:
            continue
        value = fn(np.asarray(y_true), np.asarray(pred), proba, classes)
        if value is not None and np.isfinite(value):
            out[name] = value
    return out


def predict_all(pipeline: Pipeline, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions and, for classifiers that have it, ``predict_proba``."""
    pred = np.asarray(pipeline.predict(X))
    proba = None
    if task == "classification" and hasattr(pipeline, "predict_proba"):
        proba = np.asarray(pipeline.predict_proba(X))
    return pred, proba


def evaluate(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """All metrics of a fitted pipeline on ``(X, y)``."""
    pred, proba = predict_all(pipeline, X, task)
    classes = np.asarray(pipeline.classes_) if task == "classification" else None
    return compute_metrics(task, y.to_numpy(), pred, proba, classes)


def segment_metrics(
    y: pd.Series,
    pred: np.ndarray,
    proba: np.ndarray | None,
    frame: pd.DataFrame,
    segments: Sequence[str],
    task: str,
    classes: np.ndarray | None,
    min_rows: int,
) -> list[dict[str, Any]]:
    """Metrics per value of each segment column, for groups of at least ``min_rows`` rows.

    The loop is over groups, not rows: each group's metrics are vectorised.
    """
    out: list[dict[str, Any]] = []
    y_arr = y.to_numpy()
    for col in segments:
        if col not in frame.columns:
            continue
        codes, uniques = pd.factorize(frame[col], use_na_sentinel=True)
        for code, value in enumerate(uniques):
            rows = np.flatnonzero(codes == code)
            if len(rows) < min_rows:
                continue
            m = compute_metrics(task, y_arr[rows], pred[rows], None if proba is None else proba[rows], classes)
            value_json = value.item() if hasattr(value, "item") else value
            out.append({"segment": col, "value": value_json if isinstance(value_json, int | float | bool) else str(value_json), "rows": int(len(rows)), **m})
    return out


def learning_curve(
    pipeline: Pipeline,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_val: pd.DataFrame,
    y_val: pd.Series,
    task: str,
    metric: str,
    max_points: int = 50,
) -> dict[str, Any] | None:
    """``metric`` per boosting stage on train and validation, for staged estimators.

    Uses ``staged_predict_proba`` / ``staged_predict`` (no refitting); ``None`` when the
    estimator has no stages. At most ``max_points`` evenly spaced stages are kept.
    """
    model = pipeline[-1]
    staged_name = "staged_predict_proba" if task == "classification" and metric in ("roc_auc", "log_loss") else "staged_predict"
    if not hasattr(model, staged_name) or not hasattr(model, "staged_predict"):
        return None
    n_stages = int(getattr(model, "n_iter_", getattr(model, "n_estimators_", getattr(model, "n_estimators", 0))) or 0)
    if n_stages <= 0:
        return None
    keep = set(np.unique(np.linspace(1, n_stages, num=min(max_points, n_stages)).round().astype(int)).tolist())
    classes = np.asarray(pipeline.classes_) if task == "classification" else None
    curve: dict[str, Any] = {"metric": metric, "steps": [], "train": [], "validation": []}
    pre = pipeline[:-1]
    for part, X, y in (("train", X_train, y_train), ("validation", X_val, y_val)):
        Xt = pre.transform(X)
        steps = []
        for stage, out in enumerate(getattr(model, staged_name)(Xt), start=1):
            if stage not in keep:
                continue
            if staged_name == "staged_predict_proba":
                proba = np.asarray(out)
                m = compute_metrics(task, y.to_numpy(), classes[proba.argmax(axis=1)], proba, classes, only=[metric])  # type: ignore[index]
            else:
                m = compute_metrics(task, y.to_numpy(), np.asarray(out), None, classes, only=[metric])
            steps.append(stage)
            curve[part].append(m.get(metric, float("nan")))
        curve["steps"] = steps
    return curve


def permutation_feature_importance(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    task: str,
    metric: str,
    *,
    repeats: int,
    max_rows: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Drop in ``metric`` when each input column is shuffled, on validation rows.

    Returns:
        ``[{"feature", "importance", "std"}]`` sorted by importance, largest first;
        importance is always "higher = more important" whatever the metric's direction.
    """
    if len(X) > max_rows:
        X = X.sample(n=max_rows, random_state=seed)
        y = y.loc[X.index]
    classes = np.asarray(pipeline.classes_) if task == "classification" else None
    sign = -1.0 if lower_is_better(metric) else 1.0

    def scorer(est: Pipeline, Xs: pd.DataFrame, ys: pd.Series) -> float:
        pred, proba = predict_all(est, Xs, task)
        value = compute_metrics(task, np.asarray(ys), pred, proba, classes, only=[metric]).get(metric, 0.0)
        return sign * value

    result = permutation_importance(pipeline, X, y, scoring=scorer, n_repeats=repeats, random_state=seed)
    rows = [
        {"feature": str(col), "importance": float(m), "std": float(s)}
        for col, m, s in zip(X.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda r: r["importance"], reverse=True)
