"""What retraining costs, and what it earns back.

- cost of one retrain = compute + storage, where compute = hours × ``costs.compute_per_hour``
  and storage = GB stored × ``costs.storage_per_gb_month`` × months kept (GB = 2**30 bytes,
  as cloud bills count);
- cost per period = cost of one retrain × frequency (retrains per period);
- value per period = metric points recovered × ``costs.value_per_metric_point``, where a point
  is 0.01 of the primary metric and "recovered" is sign-aware: a rise of accuracy or a fall
  of rmse is a recovery, the opposite is a loss (negative value);
- net value = value − cost, ROI = net value / cost (None when nothing was spent).

"Metric recovered" is the level gained over the period, e.g. the mean accuracy with the
retraining policy minus the mean accuracy without it in a backtest — not the gain of each
retrain added up, since a recovered level is earned once per period, however often it is
retrained for.

Example (a worked one, also in docs/policy.md)::

    >>> from modelpilot.config import CostsConfig
    >>> costs = CostsConfig(compute_per_hour=0.40, storage_per_gb_month=0.02, value_per_metric_point=10.0)
    >>> one = retrain_cost(1800, 2**30, costs)            # 30 min of compute, 1 GB kept a month
    >>> one["total"]
    0.22
    >>> r = roi(0.03, one, costs, frequency=4)             # +3 accuracy points, 4 retrains
    >>> r["cost"], r["value"], r["net_value"], round(r["roi"], 2)
    (0.88, 30.0, 29.12, 33.09)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.config import CostsConfig
from modelpilot.metrics import higher_is_better

GB = 2**30
METRIC_POINT = 0.01


def retrain_cost(
    compute_seconds: float, stored_bytes: float, costs: CostsConfig, *, storage_months: float = 1.0
) -> dict[str, Any]:
    """The cost of one retrain from its measured profile.

    Args:
        compute_seconds: wall-clock seconds of compute the retrain used (all workers summed).
        stored_bytes: bytes it added to the artifact store (model, reference, reports).
        costs: the ``costs`` settings.
        storage_months: how long the artifacts are kept, in months.

    Returns:
        ``{"compute", "storage", "total", "compute_seconds", "stored_gb", "currency"}``.

    Raises:
        ValueError: a negative duration or size.
    """
    if compute_seconds < 0 or stored_bytes < 0 or storage_months < 0:
        raise ValueError("compute_seconds, stored_bytes and storage_months cannot be negative")
    compute = compute_seconds / 3600 * costs.compute_per_hour
    storage = stored_bytes / GB * costs.storage_per_gb_month * storage_months
    return {
        "compute": round(compute, 6),
        "storage": round(storage, 6),
        "total": round(compute + storage, 6),
        "compute_seconds": float(compute_seconds),
        "stored_gb": stored_bytes / GB,
        "currency": costs.currency,
    }


def roi(
    metric_recovered: float,
    retrain_costs: float | Mapping[str, Any] | Sequence[float | Mapping[str, Any]],
    costs: CostsConfig,
    *,
    frequency: float | None = None,
    metric: str | None = None,
) -> dict[str, Any]:
    """Return on retraining over one period.

    Args:
        metric_recovered: the change of the primary metric over the period, in metric units
            (0.03 = 3 points). With ``metric`` given it is read in that metric's direction
            (for rmse a negative change is a recovery); without, positive = better.
        retrain_costs: the cost of one retrain (a number or a :func:`retrain_cost` dict), or a
            list of them for the retrains of the period (then the mean is the per-retrain cost).
        costs: the ``costs`` settings.
        frequency: retrains per period; default 1, or the length of a list of costs.
        metric: the metric's name, to orient ``metric_recovered``.

    Returns:
        ``{"points", "value", "cost_per_retrain", "frequency", "cost", "net_value", "roi",
        "currency", "formula"}``; ``roi`` is None when the cost is zero.
    """
    if isinstance(retrain_costs, int | float | Mapping):
        per_retrain = _total(retrain_costs)
        count = 1.0
    else:
        totals = [_total(c) for c in retrain_costs]
        per_retrain = sum(totals) / len(totals) if totals else 0.0
        count = float(len(totals))
    freq = float(frequency) if frequency is not None else count
    sign = 1.0 if metric is None or higher_is_better(metric) else -1.0
    points = sign * metric_recovered * (1 / METRIC_POINT)
    value = points * costs.value_per_metric_point
    cost = per_retrain * freq
    net = value - cost
    return {
        "points": round(points, 6),
        "value": round(value, 6),
        "cost_per_retrain": round(per_retrain, 6),
        "frequency": freq,
        "cost": round(cost, 6),
        "net_value": round(net, 6),
        "roi": net / cost if cost > 0 else None,
        "currency": costs.currency,
        "formula": "cost = (compute + storage) x frequency; value = points x value_per_metric_point; "
        "roi = (value - cost) / cost",
    }


def _total(cost: float | Mapping[str, Any]) -> float:
    return float(cost["total"]) if isinstance(cost, Mapping) else float(cost)
