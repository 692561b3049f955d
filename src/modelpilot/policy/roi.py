"""What retraining costs, and what it earns: one definition for the dashboard, the backtest and the CLI.

- **cost** of one retrain = compute + storage, where compute = hours × ``costs.compute_per_hour``
  and storage = GB stored × ``costs.storage_per_gb_month`` × months kept (GB = 2**30 bytes,
  as cloud bills count). Every retrain costs, promoted or not.
- **value** of a promotion = predictions served by the new champion × what one prediction
  made better is worth × the *realised* difference per prediction, measured on the same
  labelled rows: after a promotion the retired champion keeps scoring a sample of live
  traffic in shadow (``costs.counterfactual``), so both models' predictions meet the same
  labels (:func:`realised_difference`). For classification the difference is in correct
  predictions (accuracy of the new minus the old on those rows) and one more correct
  prediction is worth ``value_per_correct_prediction + cost_per_error``; for regression it
  is the absolute error avoided per prediction (mean |error| of the old minus the new) and
  one unit is worth ``cost_per_unit_error``. Money is counted per prediction, so the value
  uses these per-row measures whatever the primary metric the gates use.
- **net value** = value − cost; **ROI** = net value / cost, a ratio, shown only when the
  cost is at least ``costs.roi_min_cost`` (a retrain costing a fraction of a cent makes any
  ratio absurd: then value and cost are shown, and ROI is None with the reason).

Values add up over promotions because each is measured over the predictions its own
champion served, against the model it replaced; metric differences are never summed.

Example::

    >>> from modelpilot.config import CostsConfig
    >>> costs = CostsConfig(compute_per_hour=0.40, storage_per_gb_month=0.02,
    ...                     value_per_correct_prediction=0.05, cost_per_error=0.05)
    >>> retrain_cost(1800, 2**30, costs)["total"]           # 30 min of compute, 1 GB kept a month
    0.22
    >>> d = realised_difference([1, 1, 0, 0], [1, 1, 0, 1], [1, 0, 1, 1], task="classification")
    >>> d["new"], d["old"], d["difference"]                  # 3 of 4 right against 1 of 4
    (0.75, 0.25, 0.5)
    >>> v = promotion_value(d, served=1000, costs=costs, task="classification")
    >>> v["value"]                                            # 1000 × 0.10 × 0.5
    50.0
    >>> r = roi(v["value"], 0.22, costs)
    >>> r["net_value"], round(r["roi"], 1)
    (49.78, 226.3)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from modelpilot.config import CostsConfig

GB = 2**30
# z of the two-sided 95 % interval of the realised difference
_Z95 = 1.959963984540054


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


def unit_value(costs: CostsConfig, task: str) -> float | None:
    """What one prediction made better is worth: one more correct (classification) or one unit
    of absolute error less (regression); None when the ``costs`` keys for the task are unset."""
    if task == "classification":
        parts = [costs.value_per_correct_prediction, costs.cost_per_error]
        return None if all(p is None for p in parts) else float(sum(p or 0.0 for p in parts))
    return None if costs.cost_per_unit_error is None else float(costs.cost_per_unit_error)


def value_hint(task: str) -> str:
    """The config keys that give predictions a value, for messages."""
    if task == "classification":
        return "set costs.value_per_correct_prediction and/or costs.cost_per_error to value predictions"
    return "set costs.cost_per_unit_error to value predictions"


def realised_difference(
    labels: Sequence[Any] | np.ndarray,
    pred_new: Sequence[Any] | np.ndarray,
    pred_old: Sequence[Any] | np.ndarray,
    *,
    task: str,
) -> dict[str, Any]:
    """How much better the new model did than the old one on the same labelled rows.

    Args:
        labels: the labels of the rows both models scored.
        pred_new: the new champion's predictions on them.
        pred_old: the retired champion's (shadow) predictions on them.
        task: ``classification`` (compares correct predictions; labels and predictions are
            compared as strings, as feedback travels) or ``regression`` (absolute errors).

    Returns:
        ``{"measure", "n", "new", "old", "difference", "ci_low", "ci_high"}``: ``measure`` is
        ``accuracy`` or ``mae``; ``difference`` is per prediction, positive = the new model
        better (accuracy new − old, or mae old − new), with its paired 95 % interval.
    """
    y, new, old = np.asarray(labels), np.asarray(pred_new), np.asarray(pred_old)
    if not len(y) == len(new) == len(old):
        raise ValueError(f"labels, pred_new and pred_old differ in length: {len(y)}, {len(new)}, {len(old)}")
    n = len(y)
    if task == "classification":
        ys = y.astype(str)
        good_new = (new.astype(str) == ys).astype(np.float64)
        good_old = (old.astype(str) == ys).astype(np.float64)
        measure, per_new, per_old, diff = "accuracy", good_new, good_old, good_new - good_old
    else:
        yf = y.astype(np.float64)
        err_new, err_old = np.abs(yf - new.astype(np.float64)), np.abs(yf - old.astype(np.float64))
        measure, per_new, per_old, diff = "mae", err_new, err_old, err_old - err_new
    if n == 0:
        return {"measure": measure, "n": 0, "new": None, "old": None, "difference": None,
                "ci_low": None, "ci_high": None}
    mean = float(diff.mean())
    half = _Z95 * float(diff.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return {"measure": measure, "n": n, "new": float(per_new.mean()), "old": float(per_old.mean()),
            "difference": mean, "ci_low": mean - half, "ci_high": mean + half}


def promotion_value(
    difference: dict[str, Any] | None, served: int, costs: CostsConfig, *, task: str
) -> dict[str, Any]:
    """The value of one promotion: ``served`` × :func:`unit_value` × the realised difference.

    Returns:
        ``{"value", "value_low", "value_high", "served", "paired", "unit_value", "note"}``;
        ``value`` is None (with ``note`` saying why) when nothing was measured yet or the
        ``costs`` keys that value a prediction are unset.
    """
    unit = unit_value(costs, task)
    paired = int(difference["n"]) if difference else 0
    out: dict[str, Any] = {"value": None, "value_low": None, "value_high": None, "served": int(served),
                           "paired": paired, "unit_value": unit, "note": None}
    if unit is None:
        out["note"] = value_hint(task)
    elif not paired or difference is None or difference.get("difference") is None:
        out["note"] = "no labelled row scored by both models yet (the retired champion's shadow sample)"
    else:
        scale = served * unit
        out["value"] = round(scale * float(difference["difference"]), 6)
        lo, hi = difference.get("ci_low"), difference.get("ci_high")
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            out["value_low"], out["value_high"] = round(scale * lo, 6), round(scale * hi, 6)
    return out


def roi(value: float | None, cost: float, costs: CostsConfig) -> dict[str, Any]:
    """Net value and ROI of ``value`` earned for ``cost`` spent.

    Returns:
        ``{"value", "cost", "net_value", "roi", "roi_note", "currency"}``: ``net_value`` =
        value − cost; ``roi`` = net value / cost, None (``roi_note`` says why) when the value
        is unknown or the cost is below ``costs.roi_min_cost``.
    """
    cost = float(cost)
    net = None if value is None else round(float(value) - cost, 6)
    ratio, note = None, None
    if value is None:
        note = "no measured value"
    elif cost <= 0 or cost < costs.roi_min_cost:
        note = (f"cost {cost:.6g} {costs.currency} is below costs.roi_min_cost ({costs.roi_min_cost:g}): "
                "a ratio over a near-zero cost means nothing; compare value and cost")
    else:
        ratio = (float(value) - cost) / cost
    return {"value": None if value is None else round(float(value), 6), "cost": round(cost, 6),
            "net_value": net, "roi": ratio, "roi_note": note, "currency": costs.currency,
            "formula": "value = predictions served x value per better prediction x realised difference; "
                       "net value = value - cost; ROI = net value / cost"}


def summarize(
    retrains: Sequence[dict[str, Any]], costs: CostsConfig, *, period_seconds: float, task: str
) -> dict[str, Any]:
    """Cost, value and ROI per retrain, per period and in total, from plain retrain rows.

    Args:
        retrains: one dict per retrain: ``{"time": datetime, "cost": float, "outcome": str,
            "version": int | None, "difference": realised_difference(...) | None,
            "served": int}`` (``difference`` and ``served`` only for promoted ones).
        costs: the ``costs`` settings.
        period_seconds: the length of a period (the budget's), counted from the first retrain.
        task: the model's task (which ``costs`` keys value a prediction).

    Returns:
        ``{"retrains": [...], "periods": [...], "total": {...}}``; each row holds
        :func:`roi`'s fields plus ``served`` and ``paired`` (the predictions the value rests on).
    """
    rows = []
    for r in retrains:
        measured = r.get("outcome") == "promoted"
        pv = promotion_value(r.get("difference"), int(r.get("served") or 0), costs, task=task) if measured else None
        value = pv["value"] if pv else (0.0 if unit_value(costs, task) is not None else None)
        rows.append({**{k: v for k, v in r.items() if k != "difference"}, "difference": r.get("difference"),
                     **roi(value, float(r.get("cost") or 0.0), costs),
                     "served": pv["served"] if pv else 0, "paired": pv["paired"] if pv else 0,
                     "value_low": pv["value_low"] if pv else None, "value_high": pv["value_high"] if pv else None,
                     "value_note": pv["note"] if pv else None})
    periods = []
    if rows:
        start = min(_time(r["time"]) for r in rows)
        buckets: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            buckets.setdefault(int((_time(r["time"]) - start).total_seconds() // period_seconds), []).append(r)
        for index, part in sorted(buckets.items()):
            begin = start.timestamp() + index * period_seconds
            periods.append({"start": datetime.fromtimestamp(begin, start.tzinfo).isoformat(),
                            "retrains": len(part), **_total(part, costs)})
    return {"retrains": rows, "periods": periods, "total": {"retrains": len(rows), **_total(rows, costs)},
            "currency": costs.currency, "unit_value": unit_value(costs, task),
            "value_hint": None if unit_value(costs, task) is not None else value_hint(task)}


def _total(rows: Iterable[dict[str, Any]], costs: CostsConfig) -> dict[str, Any]:
    rows = list(rows)
    cost = sum(float(r["cost"] or 0.0) for r in rows)
    values = [r["value"] for r in rows]
    # promotions not measured yet are left out of the value and counted in "unmeasured"
    known = [float(v) for v in values if v is not None]
    value = float(sum(known)) if known else None
    return {**roi(value, cost, costs), "served": sum(int(r["served"]) for r in rows),
            "paired": sum(int(r["paired"]) for r in rows),
            "unmeasured": sum(1 for r in rows if r["value"] is None)}


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
