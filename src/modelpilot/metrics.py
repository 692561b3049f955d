"""The metrics modelpilot speaks of, and which way is better: decided here, once.

>>> higher_is_better("accuracy"), higher_is_better("rmse")
(True, False)
>>> improvement("rmse", new=0.9, old=1.0)  # positive = better, whatever the direction
0.09999999999999998
"""

from __future__ import annotations

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


def overfit_gap(train: dict[str, float], validation: dict[str, float], metric: str, bound: float | None) -> dict[str, Any]:
    """How much better ``metric`` is on the training rows than on validation (positive = worse
    on validation, whatever the metric's direction), flagged above ``bound``.

    Returns:
        ``{"gap", "flagged", "bound", "metric"}``; ``gap`` is None when either side lacks the metric.

    >>> overfit_gap({"rmse": 1.0}, {"rmse": 1.5}, "rmse", 0.2)["flagged"]
    True
    """
    if metric not in train or metric not in validation:
        return {"gap": None, "flagged": False, "bound": bound, "metric": metric}
    gap = float(improvement(metric, train[metric], validation[metric]))
    return {"gap": gap, "flagged": bound is not None and gap > bound, "bound": bound, "metric": metric}
