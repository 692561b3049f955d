"""Label-free error estimates for regression: a model of the residuals, stored as JSON.

A regression model has no probabilities to read its confidence from. Instead a small
decision tree learns, on the validation rows (out-of-sample, like live traffic), how large
the model's error is given the inputs and the prediction: its two outputs are |residual|
and residual². On a live window the mean of the first estimates the MAE, the square root of
the mean of the second the RMSE ("direct loss estimation"). Like every label-free estimate
it assumes the error given the inputs does not change (covariate shift); under concept
drift the inputs look familiar and the estimate stays low while the real error grows.

The tree is stored as its node arrays in the reference profile (``reference["error_model"]``,
``format`` = ``"modelpilot.error_model/1"``), so monitoring evaluates it with NumPy alone.
Inputs: the numeric features as they are, each categorical feature as the index of its
value among the reference profile's top categories (one code for every other value,
missing stays missing), and the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.tree import DecisionTreeRegressor

from modelpilot.errors import DataError

ERROR_MODEL_FORMAT = "modelpilot.error_model/1"
# deep enough to separate regions of different error, shallow enough to stay a few KB
MAX_DEPTH = 8


def fit_error_model(
    X: pd.DataFrame,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    categories: dict[str, list[str]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the residual model on held-out rows.

    Args:
        X: the held-out features (not modified).
        y_true, y_pred: their labels and the model's predictions.
        numeric, categorical: the feature columns.
        categories: the known values of each categorical column (the reference profile's
            ``categories``); default: the values seen in ``X``, most frequent first.
        seed: the tree's random state.

    Returns:
        The JSON-serialisable error model (see the module docstring).

    Raises:
        DataError: lengths that differ, or fewer than 20 rows.
    """
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if not len(X) == yt.size == yp.size:
        raise DataError(f"got {len(X)} rows, {yt.size} labels and {yp.size} predictions; align them")
    if yt.size < 20:
        raise DataError(f"an error model needs at least 20 held-out rows, got {yt.size}")
    cats = {c: list((categories or {}).get(c) or _categories(X[c])) for c in categorical}
    spec = {"numeric": list(numeric), "categorical": list(categorical), "categories": cats}
    residual = yt - yp
    ok = np.isfinite(residual)
    # leaves of at least 1% of the rows (>= 20): the leaf means are what the estimate averages
    tree = DecisionTreeRegressor(max_depth=MAX_DEPTH, min_samples_leaf=max(20, yt.size // 100), random_state=seed)
    tree.fit(_design(spec, X, yp)[ok], np.column_stack([np.abs(residual), residual**2])[ok])
    t = tree.tree_
    return {
        "format": ERROR_MODEL_FORMAT,
        **spec,
        "rows": int(ok.sum()),
        "left": t.children_left.tolist(),
        "right": t.children_right.tolist(),
        "feature": t.feature.tolist(),
        "threshold": t.threshold.tolist(),
        "missing_left": t.missing_go_to_left.astype(bool).tolist(),
        "value": t.value[:, :, 0].tolist(),
    }


def predict_errors(model: dict[str, Any], X: pd.DataFrame, y_pred: ArrayLike) -> NDArray[np.float64]:
    """Per row, the expected |residual| and residual² (n × 2).

    Raises:
        DataError: a feature column the model needs is not in ``X``, or lengths differ.
    """
    yp = np.asarray(y_pred, dtype=np.float64)
    missing = [c for c in [*model["numeric"], *model["categorical"]] if c not in X.columns]
    if missing:
        raise DataError(f"columns {missing} are not in the data; the error model was fitted on them")
    if yp.size != len(X):
        raise DataError(f"got {len(X)} rows but {yp.size} predictions; pass one prediction per row")
    # the tree compared float32 inputs with its thresholds: do the same so the leaves agree
    design = _design(model, X, yp).astype(np.float32).astype(np.float64)
    left, right = np.asarray(model["left"]), np.asarray(model["right"])
    feature, threshold = np.asarray(model["feature"]), np.asarray(model["threshold"])
    missing_left = np.asarray(model["missing_left"], dtype=bool)
    node = np.zeros(len(X), dtype=np.int64)
    rows = np.arange(len(X))
    for _ in range(len(left)):  # one level per pass; stops at the deepest leaf
        inner = left[node] != -1
        if not inner.any():
            break
        x = design[rows, np.maximum(feature[node], 0)]
        go_left = np.where(np.isnan(x), missing_left[node], x <= threshold[node])
        node = np.where(inner, np.where(go_left, left[node], right[node]), node)
    out: NDArray[np.float64] = np.asarray(model["value"], dtype=np.float64)[node]
    return out


def estimate_error(model: dict[str, Any], X: pd.DataFrame, y_pred: ArrayLike) -> dict[str, float]:
    """Expected MAE and RMSE of a window without labels: ``{"n", "expected_mae", "expected_rmse"}``.

    Raises:
        DataError: as :func:`predict_errors`.
    """
    out: dict[str, float] = {"n": float(len(X))}
    if not len(X):
        return out
    errors = predict_errors(model, X, y_pred)
    out["expected_mae"] = float(errors[:, 0].mean())
    out["expected_rmse"] = float(np.sqrt(errors[:, 1].mean()))
    return out


def _categories(values: pd.Series) -> list[str]:
    counts = values.dropna().astype(str).value_counts()
    return [str(v) for v in counts.index]


def _design(spec: dict[str, Any], X: pd.DataFrame, y_pred: NDArray[np.float64]) -> NDArray[np.float64]:
    cols = [pd.to_numeric(X[c], errors="coerce").to_numpy(np.float64, na_value=np.nan) for c in spec["numeric"]]
    for c in spec["categorical"]:
        known = spec["categories"][c]
        codes = pd.Index(known).get_indexer(X[c].astype(str)).astype(np.float64)
        codes[codes < 0] = len(known)  # a value outside the known ones
        codes[X[c].isna().to_numpy()] = np.nan
        cols.append(codes)
    cols.append(y_pred)
    design = np.column_stack(cols)
    design[~np.isfinite(design)] = np.nan
    return design
