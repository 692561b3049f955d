"""Per-prediction explanations and their drift.

:func:`explain` attributes each prediction to the features, model-agnostically, with exact
additivity: ``base_value + sum(contributions) == output`` for every row. The output is the
regression prediction, the positive-class probability of a binary classifier, or the
probability of the predicted class of a multi-class one; the base value is the output for
the **baseline row** (numeric medians and the most frequent categories of the training
data, read from the version's reference profile: :func:`baseline_row`).

The attribution walks from the baseline to the row one feature at a time, in
``orderings`` random orders: each step's change of the output is the contribution of the
feature switched in. Every walk telescopes to ``output − base_value``, so the average
does too; averaging over orders approaches the Shapley values of the "baseline game"
(Štrumbelj & Kononenko's sampling estimate). Cost: ``orderings × (features + 1)`` model
evaluations per row, all in one batched call.

Attribution drift (:func:`attribution_drift`) compares the mean absolute contribution of
each feature on a live window with the same figure on the validation rows: a feature whose
share of the model's attention moved is flagged — a covariate shift that moves traffic
into a region where the model leans on other features, which input drift alone does not say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelpilot.errors import DataError

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

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: ``base_value``, ``output``, ``contributions``."""
        return [
            {"base_value": float(base), "output": float(out),
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
) -> Explanation:
    """Contributions of each column of ``frame`` to each prediction (see the module docstring).

    Args:
        pipeline: the fitted model bundle (``predict`` / ``predict_proba``).
        frame: the rows to explain, one column per feature (not modified).
        baseline: one row with the same columns (:func:`baseline_row`).
        classes: the classifier's classes (None for a regressor).
        orderings: random feature orders averaged (more: closer to Shapley values, slower).
        seed: the orders' random state (explanations are reproducible).

    Raises:
        DataError: ``baseline`` is not one row with ``frame``'s columns.
    """
    features = [str(c) for c in frame.columns]
    if len(baseline) != 1 or [str(c) for c in baseline.columns] != features:
        raise DataError(f"the baseline must be one row with the columns {features}")
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
    return Explanation(features, steps[:, 0, 0], steps[:, 0, -1], contributions)


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
