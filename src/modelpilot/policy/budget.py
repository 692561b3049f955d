"""The retraining budget: at most ``budget.max_retrains`` retrains and ``budget.max_cost``
spent per rolling ``budget.period``.

The period is rolling (the last 7 days, not the calendar week), so a burst of retrains at the
end of one week and the start of the next cannot double the budget. The cost check is made
*before* a retrain, so it projects the next retrain's cost from the last one recorded: a
retrain that would take the spending past ``max_cost`` is refused, not discovered afterwards.

Example::

    >>> from datetime import UTC, datetime, timedelta
    >>> from modelpilot.config import BudgetConfig
    >>> now = datetime(2024, 1, 8, tzinfo=UTC)
    >>> spent = [(now - timedelta(days=1), 2.0), (now - timedelta(days=9), 5.0)]
    >>> check_budget(BudgetConfig(max_retrains=1), spent, now).allowed
    False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelpilot.config import BudgetConfig

Retrain = tuple[datetime, float]


@dataclass(frozen=True)
class BudgetStatus:
    """Whether one more retrain fits the budget, with the numbers behind the answer."""

    allowed: bool
    reason: str
    retrains: int
    spent: float
    projected_cost: float
    max_retrains: int | None
    max_cost: float | None
    period_seconds: float

    def numbers(self) -> dict[str, Any]:
        """The fields an event records."""
        return {
            "budget_retrains": self.retrains,
            "budget_max_retrains": self.max_retrains,
            "budget_spent": self.spent,
            "budget_projected_cost": self.projected_cost,
            "budget_max_cost": self.max_cost,
            "budget_period_seconds": self.period_seconds,
        }


def in_period(retrains: Sequence[Retrain], now: datetime, period_seconds: float) -> list[Retrain]:
    """The retrains within the rolling period ending at ``now`` (older ones no longer count)."""
    start = now - timedelta(seconds=period_seconds)
    return [(t, c) for t, c in retrains if start < t <= now]


def check_budget(
    cfg: BudgetConfig,
    retrains: Sequence[Retrain],
    now: datetime,
    *,
    next_cost: float | None = None,
) -> BudgetStatus:
    """Whether one more retrain is allowed at ``now``.

    Args:
        cfg: the ``budget`` settings.
        retrains: (time, cost) of past retrains; those outside the period are ignored.
        now: the time of the would-be retrain (timezone-aware).
        next_cost: the expected cost of the next retrain; default the last recorded cost.

    Returns:
        A :class:`BudgetStatus` whose ``reason`` quotes the numbers either way.
    """
    current = in_period(retrains, now, cfg.period)
    count = len(current)
    spent = float(sum(c for _, c in current))
    if next_cost is None:
        next_cost = retrains[-1][1] if retrains else 0.0
    projected = spent + next_cost
    days = cfg.period / 86400
    window = f"the last {days:g} days" if days >= 1 else f"the last {cfg.period:g} s"
    if cfg.max_retrains is not None and count >= cfg.max_retrains:
        reason = (
            f"budget: {count} retrains in {window} reached budget.max_retrains {cfg.max_retrains}"
        )
        allowed = False
    elif cfg.max_cost is not None and projected > cfg.max_cost:
        reason = (
            f"budget: {spent:.2f} spent in {window} plus the expected {next_cost:.2f} of another "
            f"retrain would exceed budget.max_cost {cfg.max_cost:.2f}"
        )
        allowed = False
    else:
        limit = f" of {cfg.max_retrains}" if cfg.max_retrains is not None else ""
        cost_limit = f" of {cfg.max_cost:.2f}" if cfg.max_cost is not None else ""
        reason = f"budget: {count}{limit} retrains and {spent:.2f}{cost_limit} spent in {window}"
        allowed = True
    return BudgetStatus(
        allowed=allowed,
        reason=reason,
        retrains=count,
        spent=spent,
        projected_cost=projected,
        max_retrains=cfg.max_retrains,
        max_cost=cfg.max_cost,
        period_seconds=cfg.period,
    )
