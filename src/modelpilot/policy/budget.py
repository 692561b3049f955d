"""The retraining budget: at most ``budget.max_retrains`` retrains and ``budget.max_cost``
spent per rolling period.

The period is rolling, so a burst of retrains at the end of one period and the start of the
next cannot double the budget. By default it is counted in labelled rows
(``budget.period_rows``): a retrain counts until that many labelled rows served after it have
arrived, so the budget means the same whatever the clock; ``budget.period`` counts time
instead (e.g. the last 7 days). The cost check is made
*before* a retrain, so it projects the next retrain's cost from the last one recorded: a
retrain that would take the spending past ``max_cost`` is refused, not discovered afterwards.

Example::

    >>> from datetime import UTC, datetime, timedelta
    >>> from modelpilot.config import BudgetConfig
    >>> now = datetime(2024, 1, 8, tzinfo=UTC)
    >>> spent = [(now - timedelta(days=1), 2.0), (now - timedelta(days=9), 5.0)]
    >>> check_budget(BudgetConfig(max_retrains=1, period="7d"), spent, now).allowed
    False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    period_seconds: float | None
    period_rows: int | None = None

    def numbers(self) -> dict[str, Any]:
        """The fields an event records."""
        return {
            "budget_retrains": self.retrains,
            "budget_max_retrains": self.max_retrains,
            "budget_spent": self.spent,
            "budget_projected_cost": self.projected_cost,
            "budget_max_cost": self.max_cost,
            "budget_period_seconds": self.period_seconds,
            "budget_period_rows": self.period_rows,
        }


def in_period(retrains: Sequence[Retrain], now: datetime, period_seconds: float) -> list[Retrain]:
    """The retrains within the rolling period ending at ``now`` (older ones no longer count)."""
    start = now - timedelta(seconds=period_seconds)
    return [(t, c) for t, c in retrains if start < t <= now]


def in_rows_period(retrains: Sequence[Retrain], now: datetime, period_rows: int,
                   rows_since: Callable[[datetime], int]) -> list[Retrain]:
    """The retrains followed by fewer than ``period_rows`` labelled rows (``rows_since(t)``)."""
    return [(t, c) for t, c in retrains if t <= now and rows_since(t) < period_rows]


def current(cfg: BudgetConfig, retrains: Sequence[Retrain], now: datetime,
            rows_since: Callable[[datetime], int] | None = None) -> list[Retrain]:
    """The retrains that count against the budget at ``now``: within the period, in time or in rows.

    ``rows_since(t)``: the labelled rows served after ``t`` (none known: every past retrain
    counts against a period in rows).
    """
    if cfg.period is not None:
        return in_period(retrains, now, cfg.period)
    if cfg.period_rows is None:
        return [(t, c) for t, c in retrains if t <= now]
    return in_rows_period(retrains, now, cfg.period_rows, rows_since or (lambda _: 0))


def describe_period(cfg: BudgetConfig) -> str:
    """The budget's period as a person reads it ("the last 7 days", "the last 50000 labelled rows")."""
    if cfg.period is None:
        return f"the last {cfg.period_rows} labelled rows" if cfg.period_rows is not None else "all time"
    days = cfg.period / 86400
    return f"the last {days:g} days" if days >= 1 else f"the last {cfg.period:g} s"


def check_budget(
    cfg: BudgetConfig,
    retrains: Sequence[Retrain],
    now: datetime,
    *,
    next_cost: float | None = None,
    rows_since: Callable[[datetime], int] | None = None,
) -> BudgetStatus:
    """Whether one more retrain is allowed at ``now``.

    Args:
        cfg: the ``budget`` settings.
        retrains: (time, cost) of past retrains; those outside the period are ignored.
        now: the time of the would-be retrain (timezone-aware).
        next_cost: the expected cost of the next retrain; default the last recorded cost.
        rows_since: the labelled rows served after a time, for a period in rows
            (``budget.period_rows``); see :func:`current`.

    Returns:
        A :class:`BudgetStatus` whose ``reason`` quotes the numbers either way.
    """
    counted = current(cfg, retrains, now, rows_since)
    count = len(counted)
    spent = float(sum(c for _, c in counted))
    if next_cost is None:
        next_cost = retrains[-1][1] if retrains else 0.0
    projected = spent + next_cost
    window = describe_period(cfg)
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
        period_rows=cfg.period_rows if cfg.period is None else None,
    )
