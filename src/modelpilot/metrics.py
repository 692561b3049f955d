"""The metrics modelpilot speaks of, and which way is better: decided here, once.

>>> higher_is_better("accuracy"), higher_is_better("rmse")
(True, False)
>>> improvement("rmse", new=0.9, old=1.0)  # positive = better, whatever the direction
0.09999999999999998

Tolerances and bounds (the overfitting bound, the segment-regression tolerance, the canary's
metric tolerance) are read in one unit per metric, decided by :func:`is_relative`: for bounded
score metrics (accuracy, roc_auc, f1, r2) a difference in points of the metric; for error
metrics (rmse, mae, log_loss), which are in the target's units or unbounded, a *fraction* of
the reference value, so one default means the same for house prices and for probabilities:

>>> round(shortfall("accuracy", value=0.80, reference=0.85), 4)  # 5 points worse
0.05
>>> round(shortfall("rmse", value=103.0, reference=100.0), 4)     # 3 % worse
0.03
"""

from __future__ import annotations

import math
from typing import Any

from modelpilot.errors import ConfigError

# True = higher is better.
METRIC_DIRECTIONS: dict[str, bool] = {
    "accuracy": True,
    "roc_auc": True,
    "f1": True,
    "r2": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
}


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better.

    Raises:
        ConfigError: the metric is unknown.
    """
    try:
        return METRIC_DIRECTIONS[metric]
    except KeyError:
        known = ", ".join(sorted(METRIC_DIRECTIONS))
        raise ConfigError(
            f"unknown metric {metric!r}: known metrics are {known}; set evaluation.metric to one of them"
        ) from None


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (error metrics)."""
    return not higher_is_better(metric)


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (positive = better), for any metric direction."""
    return (new - old) if higher_is_better(metric) else (old - new)


# error metrics: their tolerances are relative to a reference value (see the module docstring)
RELATIVE_METRICS: frozenset[str] = frozenset({"rmse", "mae", "log_loss"})


def is_relative(metric: str) -> bool:
    """Whether tolerances on ``metric`` are fractions of a reference value (error metrics).

    Raises:
        ConfigError: the metric is unknown.
    """
    higher_is_better(metric)
    return metric in RELATIVE_METRICS


def shortfall(metric: str, value: float, reference: float) -> float:
    """How much worse ``value`` is than ``reference`` (positive = worse), in tolerance units.

    Points of the metric for bounded score metrics; ``(value - reference) / |reference|`` for
    error metrics (:func:`is_relative`). A reference of exactly 0 (a perfect error) makes any
    worse value infinitely worse.

    Raises:
        ConfigError: the metric is unknown.
    """
    worse = 0.0 - improvement(metric, value, reference)  # not -improvement: equal values give 0.0, not -0.0
    if not is_relative(metric):
        return worse
    scale = abs(reference)
    if scale == 0.0:
        return 0.0 if worse <= 0 else math.inf
    return worse / scale


def format_shortfall(metric: str, amount: float) -> str:
    """A shortfall or a tolerance as people read it: ``"3.0 %"`` (error metrics) or ``"0.0300"``.

    >>> format_shortfall("rmse", 0.03), format_shortfall("accuracy", 0.03)
    ('3.0 %', '0.0300')
    """
    return f"{amount * 100:.1f} %" if is_relative(metric) else f"{amount:.4f}"


def overfit_gap(train: dict[str, float], validation: dict[str, float], metric: str, bound: float | None) -> dict[str, Any]:
    """How much better ``metric`` is on the training rows than on validation (positive = worse
    on validation, whatever the metric's direction), flagged above ``bound``.

    For bounded score metrics the gap is ``train - validation`` in points of the metric; for
    error metrics (:func:`is_relative`) it is relative, ``(validation - train) / validation``:
    the share of the validation error the model does not make on its own training rows
    (0.1 = the training error is 10 % below the validation error), so the bound does not
    depend on the target's units.

    Returns:
        ``{"gap", "flagged", "bound", "metric", "relative"}``; ``gap`` is None when either side
        lacks the metric.

    >>> overfit_gap({"rmse": 1.0}, {"rmse": 1.5}, "rmse", 0.2)["gap"]  # (1.5 - 1.0) / 1.5
    0.3333333333333333
    >>> overfit_gap({"accuracy": 0.99}, {"accuracy": 0.95}, "accuracy", 0.1)["flagged"]
    False
    """
    relative = is_relative(metric)
    if metric not in train or metric not in validation:
        return {"gap": None, "flagged": False, "bound": bound, "metric": metric, "relative": relative}
    t, v = float(train[metric]), float(validation[metric])
    if relative:
        gap = 0.0 if v <= 0 else (v - t) / abs(v)
    else:
        gap = improvement(metric, t, v)
    return {"gap": gap, "flagged": bound is not None and gap > bound, "bound": bound, "metric": metric,
            "relative": relative}
