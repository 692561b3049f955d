"""Per-prediction explanations and their drift.

:func:`explain` attributes each prediction to the input features with exact additivity:
``base_value + sum(contributions) == output`` for every row. The method depends on the
model at the end of the pipeline (``Explanation.method``):

* ``"tree_path"`` — scikit-learn decision trees, random forests, extra trees and
  HistGradientBoosting: exact path contributions (Saabas): each row's root-to-leaf path in
  every tree, each step's change of the node's expected value given to the split feature.
  ``base_value`` is the model's expected output over its training rows (the root values).
* ``"linear"`` — models with ``coef_`` (LogisticRegression, Ridge...): ``coef × (z − z₀)``
  on the transformed columns, ``z₀`` the baseline row transformed; base = the model at the
  baseline row.
* ``"lightgbm"`` — LightGBM's own exact TreeSHAP (``pred_contrib=True``).
* ``"baseline_walk"`` — any other model (or preprocessing that cannot be mapped back to
  the input columns): the model-agnostic walk below.

Contributions on transformed columns are mapped back to the input features: the one-hot
columns of a categorical feature are summed. ``Explanation.output_kind`` says which output
is explained: ``"probability"`` (trees, forests and the walk: the positive-class
probability of a binary classifier, the predicted class's probability of a multi-class
one), ``"raw_score"`` (HistGradientBoosting, linear and LightGBM classifiers: the
decision function — log-odds when binary; the predicted class's score when multi-class)
or ``"prediction"`` (regressors). An exact method's output is checked against the model's
own output (to 1e-6) and the walk is used instead if it ever disagrees.

The walk (model-agnostic) starts at the **baseline row** (numeric medians and the most
frequent categories of the training data, read from the version's reference profile:
:func:`baseline_row`; ``base_value`` is the model's output there) and switches the row's
features in one at a time, in ``orderings`` random orders: each step's change of the
output is the contribution of the feature switched in. Every walk telescopes to
``output − base_value``, so the average does too; averaging over orders approaches the
Shapley values of the "baseline game" (Štrumbelj & Kononenko's sampling estimate). Cost:
``orderings × (features + 1)`` model evaluations per row, all in one batched call.

Attribution drift (:func:`attribution_drift`) compares the mean absolute contribution of
each feature on a live window with the same figure on the validation rows: a feature whose
share of the model's attention moved is flagged — a covariate shift that moves traffic
into a region where the model leans on other features, which input drift alone does not say.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.compose import ColumnTransformer

from modelpilot.errors import DataError
from modelpilot.monitoring import _exact

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class Explanation:
    """Per row: ``output`` = ``base_value`` + the sum of ``contributions`` (n × features).

    ``base_value`` holds one value per row: the baseline's output is the same for every row
    except for multi-class models, where each row is explained for its own predicted class.
    """

    features: list[str]
    base_value: Matrix
    output: Matrix
    contributions: Matrix
    method: str = "baseline_walk"
    output_kind: str = "probability"

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: ``base_value``, ``output``, ``output_kind``,
        ``method``, ``contributions``."""
        return [
            {"base_value": float(base), "output": float(out), "output_kind": self.output_kind,
             "method": self.method,
             "contributions": {f: float(c) for f, c in zip(self.features, row, strict=True)}}
            for base, out, row in zip(self.base_value, self.output, self.contributions, strict=True)
        ]


def baseline_row(reference: dict[str, Any], features: Sequence[str]) -> pd.DataFrame:
    """The baseline: each numeric feature's median and each categorical feature's most
    frequent value in the reference profile (one row).

    Raises:
        DataError: a feature is not in the profile.
    """
    row: dict[str, Any] = {}
    for name in features:
        spec = reference.get("columns", {}).get(name)
        if spec is None:
            raise DataError(f"feature {name!r} is not in the reference profile; explain with the version's own profile")
        if spec["type"] == "numeric":
            sample = spec.get("sample") or []
            row[name] = float(sample[len(sample) // 2]) if sample else 0.0
        else:
            row[name] = spec["categories"][0] if spec.get("categories") else None
    return pd.DataFrame([row])


def explain(
    pipeline: Any,
    frame: pd.DataFrame,
    baseline: pd.DataFrame,
    *,
    classes: Sequence[Any] | None = None,
    orderings: int = 4,
    seed: int = 0,
    method: str = "auto",
) -> Explanation:
    """Contributions of each column of ``frame`` to each prediction (see the module docstring).

    Args:
        pipeline: the fitted model bundle (``predict`` / ``predict_proba``).
        frame: the rows to explain, one column per feature (not modified).
        baseline: one row with the same columns (:func:`baseline_row`).
        classes: the classifier's classes (None for a regressor).
        orderings: random feature orders averaged (more: closer to Shapley values, slower).
        seed: the orders' random state (explanations are reproducible).
        method: ``"auto"`` (exact where the model allows, else the walk), ``"exact"``
            (fail rather than walk) or ``"walk"`` (always model-agnostic).

    Raises:
        DataError: ``baseline`` is not one row with ``frame``'s columns; ``method`` is
            unknown, or ``"exact"`` for a model without an exact method.
    """
    features = [str(c) for c in frame.columns]
    if len(baseline) != 1 or [str(c) for c in baseline.columns] != features:
        raise DataError(f"the baseline must be one row with the columns {features}")
    if method not in ("auto", "exact", "walk"):
        raise DataError(f"explanation method {method!r} is unknown; use 'auto', 'exact' or 'walk'")
    if method != "walk":
        exact = explain_exact(pipeline, frame, baseline, classifier=classes is not None)
        if exact is not None:
            return exact
        if method == "exact":
            raise DataError(f"no exact explanation for {type(_split(pipeline)[1]).__name__}; use method='auto' or 'walk'")
    n, d = len(frame), len(features)
    rng = np.random.default_rng(seed)
    orders = np.array([rng.permutation(d) for _ in range(max(orderings, 1))])
    k = len(orders)
    # switched[o, s, j]: is feature j taken from the row at step s of order o (s = 0..d)
    switched = np.zeros((k, d + 1, d), dtype=bool)
    for o, order in enumerate(orders):
        for s in range(1, d + 1):
            switched[o, s, order[:s]] = True
    mask = np.broadcast_to(switched.reshape(1, k * (d + 1), d), (n, k * (d + 1), d)).reshape(-1, d)
    row_of = np.repeat(np.arange(n), k * (d + 1))
    walk = {}
    for j, name in enumerate(features):
        own = frame[name].to_numpy()[row_of]
        base = np.repeat(baseline[name].to_numpy(), len(row_of))
        walk[name] = np.where(mask[:, j], own, base)
    values = _output(pipeline, pd.DataFrame(walk), classes, n, k * (d + 1))
    steps = values.reshape(n, k, d + 1)
    deltas = np.diff(steps, axis=2)  # deltas[i, o, s]: the change when order o switches its s-th feature
    contributions = np.zeros((n, d))
    for o, order in enumerate(orders):
        contributions[:, order] += deltas[:, o, :]
    contributions /= k
    kind = "prediction" if classes is None else "probability"
    return Explanation(features, steps[:, 0, 0], steps[:, 0, -1], contributions, "baseline_walk", kind)


def _split(pipeline: Any) -> tuple[Any, Any]:
    """(preprocessing or None, final model) of a pipeline or a bare estimator."""
    steps = getattr(pipeline, "steps", None)
    if not steps:
        return None, pipeline
    return (pipeline[:-1] if len(steps) > 1 else None), steps[-1][1]


def _owners(pre: Any, features: list[str]) -> NDArray[np.int_] | None:
    """For each transformed column, the index of the input feature it comes from (one-hot
    columns of a feature all map to it), or None when the preprocessing cannot say."""
    steps = getattr(pre, "steps", None)
    ct = steps[0][1] if steps and len(steps) == 1 else pre
    if not isinstance(ct, ColumnTransformer):
        return None
    width = sum(s.stop - s.start for s in ct.output_indices_.values())
    owner = np.full(width, -1)
    for name, trans, cols in ct.transformers_:
        where = ct.output_indices_.get(name)
        if where is None or where.stop == where.start:
            continue
        if not all(isinstance(c, str) and c in features for c in np.atleast_1d(cols)):
            return None
        idx = [features.index(c) for c in np.atleast_1d(cols)]
        n_out = where.stop - where.start
        if n_out == len(idx):
            owner[where] = idx
            continue
        last = trans.steps[-1][1] if hasattr(trans, "steps") else trans
        cats = getattr(last, "categories_", None)
        if (cats is None or getattr(last, "drop_idx_", None) is not None
                or getattr(last, "_infrequent_enabled", False) or sum(len(c) for c in cats) != n_out):
            return None
        owner[where] = np.repeat(idx, [len(c) for c in cats])
    return None if (owner < 0).any() else owner


_CHECK = {"probability": "predict_proba", "raw_score": "decision_function", "prediction": "predict"}


def explain_exact(pipeline: Any, frame: pd.DataFrame, baseline: pd.DataFrame, *, classifier: bool) -> Explanation | None:
    """The exact contributions for the pipeline's model (module docstring), or None when
    the model or its preprocessing has no exact method (or its output disagrees)."""
    features = [str(c) for c in frame.columns]
    pre, model = _split(pipeline)
    if pre is None:
        try:
            Z, Z0 = frame.to_numpy(np.float64), baseline.to_numpy(np.float64)
        except (TypeError, ValueError):
            return None
        owner: NDArray[np.int_] = np.arange(len(features))
    else:
        mapped = _owners(pre, features)
        if mapped is None:
            return None
        owner = mapped
        # one transform for the rows and the baseline: its fixed cost dominates small requests
        both = np.asarray(pre.transform(pd.concat([frame, baseline], ignore_index=True)), dtype=np.float64)
        Z, Z0 = both[:-1], both[-1:]
    if Z.shape[1] != len(owner):
        return None
    with warnings.catch_warnings():
        # a model fitted on a DataFrame warns when given the same columns as an array
        warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
        return _exact_on(model, Z, Z0, owner, features, classifier)


def _exact_on(model: Any, Z: Matrix, Z0: Matrix, owner: NDArray[np.int_], features: list[str],
              classifier: bool) -> Explanation | None:
    found: _exact.Exact | None = None
    name = ""
    if hasattr(model, "_predictors"):
        found, name = _exact.hist_gradient_boosting(model, Z, classifier), "tree_path"
    elif hasattr(model, "booster_"):
        found, name = _exact.lightgbm(model, Z, classifier), "lightgbm"
    elif hasattr(model, "tree_") or hasattr(model, "estimators_"):
        found, name = _exact.sklearn_trees(model, Z, classifier), "tree_path"
    elif hasattr(model, "coef_"):
        found, name = _exact.linear(model, Z, Z0, classifier), "linear"
    if found is None:
        return None
    base, output, contrib, kind = found
    check = getattr(model, _CHECK[kind], None)
    if check is not None and len(Z):
        own = np.asarray(check(Z), dtype=np.float64)
        own = own if own.ndim == 1 else (own[:, 1] if own.shape[1] == 2 else own.max(axis=1))
        if not np.allclose(own, output, rtol=1e-6, atol=1e-6):
            return None
    mapped = np.zeros((len(Z), len(features)))
    np.add.at(mapped.T, owner, contrib.T)
    return Explanation(features, base, output, mapped, name, kind)


def _output(pipeline: Any, walk: pd.DataFrame, classes: Sequence[Any] | None, n: int, per_row: int) -> Matrix:
    if classes is None:
        out: Matrix = np.asarray(pipeline.predict(walk), dtype=np.float64)
        return out
    proba = np.asarray(pipeline.predict_proba(walk), dtype=np.float64)
    if proba.shape[1] == 2:
        return proba[:, 1]
    # multi-class: the probability of the class the model predicts for the row itself
    full = proba.reshape(n, per_row, -1)
    chosen = full[:, -1, :].argmax(axis=1)
    picked: Matrix = full[np.arange(n), :, chosen].reshape(-1)
    return picked


def mean_abs_contributions(explanation: Explanation) -> dict[str, float]:
    """Each feature's mean absolute contribution (global importance)."""
    means = np.abs(explanation.contributions).mean(axis=0) if len(explanation.output) else np.zeros(len(explanation.features))
    return {f: float(v) for f, v in zip(explanation.features, means, strict=True)}


def attribution_drift(
    reference: dict[str, float], current: dict[str, float], *, min_change: float = 0.1
) -> dict[str, Any]:
    """Compare each feature's share of the total mean |contribution| with the reference.

    Args:
        reference: ``mean_abs_contributions`` on the validation rows.
        current: the same on the live window.
        min_change: a feature is flagged when its share moved by at least this much
            (absolute, shares sum to 1).

    Returns:
        ``{"features": {name: {"reference_share", "current_share", "change"}},
        "flagged": [names], "total_change": half the L1 distance of the shares}``.
    """
    names = sorted(set(reference) | set(current))
    ref_total = sum(reference.values()) or 1.0
    cur_total = sum(current.values()) or 1.0
    out: dict[str, Any] = {}
    for name in names:
        r, c = reference.get(name, 0.0) / ref_total, current.get(name, 0.0) / cur_total
        out[name] = {"reference_share": r, "current_share": c, "change": c - r}
    flagged = [n for n, v in out.items() if abs(v["change"]) >= min_change]
    return {"features": out, "flagged": flagged,
            "total_change": 0.5 * sum(abs(v["change"]) for v in out.values())}
