"""Exact, model-specific contributions for the estimators modelpilot trains.

Each function returns ``(base, output, contributions, kind)`` on the model's own output
scale, per row, for the transformed matrix ``Z`` (the pipeline's preprocessing output),
with ``base + contributions.sum(axis=1) == output`` by construction:

* scikit-learn decision trees and forests (``tree_``) and HistGradientBoosting (its
  predictors' nodes): **path contributions** (Saabas) — each row's path from the root to
  its leaf, every step's change of the expected value (the node's value, for
  HistGradientBoosting the sample-weighted mean of its subtree's leaves) given to the
  split feature; the sum telescopes to ``leaf − root``. Forests average their trees.
  Output: the probability (forests / trees), the raw score (HistGradientBoosting
  classifiers: log-odds when binary) or the prediction (regressors).
* linear models (``coef_``): ``coef × (z − z_baseline)`` on the transformed columns,
  base = the model at the baseline row; output: the prediction or the decision function.
* LightGBM: its own exact TreeSHAP (``pred_contrib=True``) on the raw score.

``None`` means "not exact for this model": the caller falls back to the model-agnostic walk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

Matrix = NDArray[np.float64]
Exact = tuple[Matrix, Matrix, Matrix, str]


def _pick(per_class: Matrix, chosen: NDArray[np.int_]) -> Matrix:
    """``per_class`` is (n, K, ...): the slice of each row's chosen class."""
    out: Matrix = per_class[np.arange(per_class.shape[0]), chosen]
    return out


def _chosen(output: Matrix) -> NDArray[np.int_]:
    """The explained class per row: the positive class (binary) or the predicted one."""
    if output.shape[1] == 2:
        return np.ones(output.shape[0], dtype=np.int_)
    return np.asarray(output.argmax(axis=1), dtype=np.int_)


def sklearn_trees(model: Any, Z: Matrix, classifier: bool) -> Exact | None:
    """Path contributions of a decision tree or a forest of them (averaged)."""
    trees = [model] if hasattr(model, "tree_") else list(getattr(model, "estimators_", []))
    if not trees or not all(hasattr(t, "tree_") for t in trees):
        return None
    n, m = Z.shape
    first = trees[0].tree_
    if first.n_outputs != 1:
        return None
    k = first.value.shape[2] if classifier else 1
    contrib = np.zeros((n, k, m))
    base = np.zeros(k)
    output = np.zeros((n, k))
    Z32 = np.asarray(Z, dtype=np.float32)
    for est in trees:
        t = est.tree_
        value = t.value[:, 0, :].astype(np.float64)
        if classifier:
            value = value / value.sum(axis=1, keepdims=True)
        parent = np.full(t.node_count, -1)
        for side in (t.children_left, t.children_right):
            inner = side >= 0
            parent[side[inner]] = np.nonzero(inner)[0]
        delta = np.where((parent >= 0)[:, None], value - value[np.maximum(parent, 0)], 0.0)
        feat = np.where(parent >= 0, t.feature[np.maximum(parent, 0)], 0)
        path = est.decision_path(Z32).tocsr()  # rows × nodes, 1 on each row's path
        for c in range(k):
            # per node: its delta on its parent's split feature, summed per row along the path
            weights = sparse.csr_matrix((delta[:, c], (np.arange(t.node_count), feat)), shape=(t.node_count, m))
            contrib[:, c, :] += (path @ weights).toarray()
        base += value[0]
        output += value[est.apply(Z32)]
    contrib /= len(trees)
    base /= len(trees)
    output /= len(trees)
    if not classifier:
        return np.full(n, base[0]), output[:, 0], contrib[:, 0, :], "prediction"
    chosen = _chosen(output)
    return base[chosen], _pick(output, chosen), _pick(contrib, chosen), "probability"


def _expected_values(nodes: Any) -> Matrix:
    """Each node's count-weighted mean of its subtree's leaf values (bottom-up)."""
    leaf = nodes["is_leaf"].astype(bool)
    expected: Matrix = np.array(nodes["value"], dtype=np.float64)
    count = nodes["count"].astype(np.float64)
    for i in range(len(nodes) - 1, -1, -1):  # children always follow their parent
        if not leaf[i]:
            left, right = nodes["left"][i], nodes["right"][i]
            total = count[left] + count[right]
            expected[i] = (expected[left] * count[left] + expected[right] * count[right]) / total if total else 0.0
    return expected


def hist_gradient_boosting(model: Any, Z: Matrix, classifier: bool) -> Exact | None:
    """Path contributions of HistGradientBoosting on its raw score (numeric splits only)."""
    predictors = getattr(model, "_predictors", None)
    if predictors is None or getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        return None
    n, m = Z.shape
    k = len(predictors[0])
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    contrib = np.zeros((n, k, m))
    base = baseline.copy()
    output = np.tile(baseline, (n, 1))
    rows = np.arange(n)
    for iteration in predictors:
        for c, predictor in enumerate(iteration):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)  # stored as uint8: ~ would not negate it
            expected = _expected_values(nodes)
            base[c] += expected[0]
            node = np.zeros(n, dtype=np.int64)
            active = ~leaf[node]
            while active.any():
                r, at = rows[active], node[active]
                feature = nodes["feature_idx"][at]
                x = Z[r, feature]
                left = np.where(np.isnan(x), nodes["missing_go_to_left"][at].astype(bool),
                                x <= nodes["num_threshold"][at])
                nxt = np.where(left, nodes["left"][at], nodes["right"][at]).astype(np.int64)
                np.add.at(contrib[:, c, :], (r, feature), expected[nxt] - expected[at])
                node[active] = nxt
                active = ~leaf[node]
            output[:, c] += nodes["value"][node]
    if classifier and k == 1:  # binary: one tree per iteration, the log-odds of the positive class
        return np.full(n, base[0]), output[:, 0], contrib[:, 0, :], "raw_score"
    if classifier:
        chosen = np.asarray(output.argmax(axis=1), dtype=np.int_)
        return base[chosen], _pick(output, chosen), _pick(contrib, chosen), "raw_score"
    identity = getattr(model, "loss", "squared_error") in ("squared_error", "absolute_error", "quantile")
    return np.full(n, base[0]), output[:, 0], contrib[:, 0, :], "prediction" if identity else "raw_score"


def linear(model: Any, Z: Matrix, z0: Matrix, classifier: bool) -> Exact | None:
    """``coef × (z − z_baseline)``: exact for a model linear in the transformed columns."""
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    if coef.shape[1] != Z.shape[1]:
        return None
    intercept = np.atleast_1d(np.asarray(getattr(model, "intercept_", 0.0), dtype=np.float64))
    out = Z @ coef.T + intercept  # n × (1 or K)
    at_base = (z0 @ coef.T + intercept).reshape(-1)
    contrib = (Z - z0)[:, None, :] * coef[None, :, :]
    n = Z.shape[0]
    kind = "raw_score" if classifier else "prediction"
    if out.shape[1] == 1:
        return np.full(n, at_base[0]), out[:, 0], contrib[:, 0, :], kind
    chosen = np.asarray(out.argmax(axis=1), dtype=np.int_)
    return at_base[chosen], _pick(out, chosen), _pick(contrib, chosen), kind


def lightgbm(model: Any, Z: Matrix, classifier: bool) -> Exact | None:
    """LightGBM's own TreeSHAP values on the raw score."""
    raw = np.asarray(model.predict(Z, pred_contrib=True), dtype=np.float64)
    n, m = Z.shape
    k = raw.shape[1] // (m + 1)
    per_class = raw.reshape(n, k, m + 1)
    contrib, base = per_class[:, :, :m], per_class[:, :, m]
    output = base + contrib.sum(axis=2)
    kind = "raw_score" if classifier else "prediction"
    if k == 1:
        return base[:, 0], output[:, 0], contrib[:, 0, :], kind
    chosen = np.asarray(output.argmax(axis=1), dtype=np.int_)
    return _pick(base, chosen), _pick(output, chosen), _pick(contrib, chosen), kind
