"""Tree structures in a loaded model are checked before anything predicts with them.

The allowlist decides which types a model file may hold, not whether their arrays are
consistent. scikit-learn's tree code indexes child and feature arrays without bounds checks,
so a crafted file with a child index past the end, or pointing back up the tree, could read
out of bounds or loop forever at the first prediction. Trees are built with every child
after its parent, so each internal node's children must lie after it and inside the array,
and its feature inside the model's inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_trees(model: Any) -> None:
    """Raise ``ValueError`` naming the first inconsistent tree found anywhere in ``model``."""
    seen: set[int] = set()
    stack: list[tuple[Any, int | None]] = [(model, None)]
    while stack:
        obj, n_features = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float | np.ndarray):
            continue
        seen.add(id(obj))
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if kind == "sklearn.tree._tree.Tree":
            _check_sklearn_tree(obj)
            continue
        if kind == "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor":
            _check_predictor(obj, n_features)
            continue
        if isinstance(obj, list | tuple):
            stack.extend((item, n_features) for item in obj)
        elif isinstance(obj, dict):
            stack.extend((item, n_features) for item in obj.values())
        elif hasattr(obj, "__dict__") and kind.startswith("sklearn."):
            width = getattr(obj, "n_features_in_", n_features)
            stack.extend((item, int(width) if width is not None else None) for item in vars(obj).values())


def _children_ok(left: np.ndarray, right: np.ndarray, internal: np.ndarray) -> bool:
    n = len(left)
    idx = np.arange(n)
    return bool(((left[internal] > idx[internal]) & (left[internal] < n)
                 & (right[internal] > idx[internal]) & (right[internal] < n)).all())


def _check_sklearn_tree(tree: Any) -> None:
    state = tree.__getstate__()
    nodes, count = state["nodes"], int(state["node_count"])
    if not 0 < count <= len(nodes):
        raise ValueError(f"a decision tree claims {count} nodes but holds {len(nodes)}")
    nodes = nodes[:count]
    left, right = nodes["left_child"].astype(np.int64), nodes["right_child"].astype(np.int64)
    internal = left != -1
    if not ((right != -1) == internal).all() or not _children_ok(left, right, internal):
        raise ValueError("a decision tree has child indices outside the tree or before their parent")
    features = nodes["feature"][internal]
    if len(features) and not ((features >= 0) & (features < tree.n_features)).all():
        raise ValueError(f"a decision tree splits on a feature outside its {tree.n_features} inputs")


def _check_predictor(predictor: Any, n_features: int | None) -> None:
    nodes = predictor.nodes
    if not len(nodes):
        raise ValueError("a boosted tree has no nodes")
    internal = nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    if not _children_ok(left, right, internal):
        raise ValueError("a boosted tree has child indices outside the tree or before their parent")
    features = nodes["feature_idx"][internal]
    if n_features is not None and len(features) and not ((features >= 0) & (features < n_features)).all():
        raise ValueError(f"a boosted tree splits on a feature outside its {n_features} inputs")
    categorical = internal & (nodes["is_categorical"] != 0)
    bitsets = len(predictor.raw_left_cat_bitsets)
    if categorical.any() and not (nodes["bitset_idx"][categorical] < bitsets).all():
        raise ValueError("a boosted tree points at a category set it does not hold")
