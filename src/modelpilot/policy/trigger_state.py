"""What the triggers read and remember: the monitoring summary, references, the change, the state.

Plain frozen dataclasses, JSON round-trippable (``to_dict``/``from_dict``); the rules that
read and update them are in :mod:`modelpilot.policy.triggers` (schedule and dynamic
triggers) and :mod:`modelpilot.policy.change` (the located change and its refreshes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelpilot.errors import DataError, StoreError
from modelpilot.metrics import improvement

Status = Literal["fired", "suppressed_cooldown", "suppressed_budget", "insufficient_samples", "watch", "quiet"]
# the event kind the controller writes for each status (None: nothing worth an event)
EVENT_KINDS: dict[str, str | None] = {
    "fired": "trigger_fired",
    "suppressed_cooldown": "trigger_suppressed",
    "suppressed_budget": "trigger_suppressed",
    "insufficient_samples": "trigger_insufficient_samples",
    "watch": "drift_watch",
    "quiet": None,
}
# drift fires alongside labelled performance once it has lost this share of the drop threshold


@dataclass(frozen=True, eq=False)
class RowClock:
    """The times of the champion's latest labelled rows: the loop's clock counted in labelled rows.

    Waits given in rows (``cooldown_rows``, ``budget.period_rows``) count the labelled rows
    served after an event, as the change trigger counts the rows after a change: the same
    policy then means the same whatever the time column's unit. It holds at most the rows
    the longest such wait needs (a count past it saturates, which decides the same).

    >>> clock = RowClock.of([datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)])
    >>> clock.since(datetime(2024, 1, 1, tzinfo=UTC)), clock.since(datetime(2024, 1, 3, tzinfo=UTC))
    (2, 0)
    """

    ns: np.ndarray  # nanoseconds since 1970 (UTC), sorted
    # running total of the rows at each time in ``ns``; None: one row at each
    cum: np.ndarray | None = None

    @classmethod
    def of(cls, times: Any) -> RowClock:
        """From times in any order: datetimes (naive ones are UTC) or a pandas series of them."""
        stamps = pd.to_datetime(pd.Series(list(times) if not isinstance(times, pd.Series) else times), utc=True)
        return cls(np.sort(stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)))

    @classmethod
    def of_counts(cls, times: Any, counts: Any) -> RowClock:
        """``counts[i]`` rows at ``times[i]``: reports that carry counts, not rows (edge devices)."""
        stamps = pd.to_datetime(pd.Series(list(times), dtype=object), utc=True)
        ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        order = np.argsort(ns, kind="stable")
        rows = np.maximum(np.asarray(list(counts), dtype=np.int64), 0)[order]
        return cls(ns[order], np.cumsum(rows))

    def since(self, when: datetime) -> int:
        """Labelled rows served strictly after ``when``."""
        at = pd.Timestamp(utc(when)).value
        i = int(np.searchsorted(self.ns, at, side="right"))
        if self.cum is None:
            return len(self.ns) - i
        total = int(self.cum[-1]) if len(self.cum) else 0
        return total - (int(self.cum[i - 1]) if i else 0)


def _coverage(raw: Any) -> dict[str, float] | None:
    """The summary's coverage entry, or None (absent, or a bare number from an older report)."""
    if not isinstance(raw, Mapping) or raw.get("coverage") is None:
        return None
    return {k: float(raw[k]) for k in ("coverage", "target", "p_value", "n")}


@dataclass(frozen=True)
class MonitoringSummary:
    """What monitoring measured on the current window of the serving champion."""

    n_predictions: int
    n_labelled: int
    metric: str
    window_end: datetime
    performance: float | None = None
    drift_share: float | None = None
    drifted_features: list[str] = field(default_factory=list)
    prediction_drift: float | None = None
    # "col=value" -> {"value": metric on the segment's labelled rows, "n": labelled rows}
    segment_performance: dict[str, dict[str, float]] = field(default_factory=dict)
    estimated_performance: float | None = None
    # the change detector's report on the champion's labelled errors (ChangeReport.to_dict()),
    # with "since": the time of the located change's first row, and "rows_since_known": the
    # labelled rows after the change the state already knows
    change: dict[str, Any] | None = None
    # the share of drifted features weighted by the champion's feature importance
    weighted_drift_share: float | None = None
    # conformal coverage on the labelled rows: {"coverage", "target", "p_value", "n"}
    coverage: dict[str, float] | None = None
    # the labelled rows' times, for waits counted in rows (not part of the stored summary;
    # None: unknown, a wait in rows then counts no rows since its event)
    rows: RowClock | None = None

    def rows_since(self, when: datetime) -> int:
        """Labelled rows served after ``when`` (0 when the summary carries no row clock)."""
        return self.rows.since(when) if self.rows is not None else 0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MonitoringSummary:
        """Build from a monitoring report's summary dict.

        Raises:
            DataError: a required key (n_predictions, metric, window_end) is missing or a
                value has the wrong type.
        """
        try:
            end = raw["window_end"]
            return cls(
                n_predictions=int(raw["n_predictions"]),
                n_labelled=int(raw.get("n_labelled") or 0),
                metric=str(raw["metric"]),
                window_end=utc(datetime.fromisoformat(end) if isinstance(end, str) else end),
                performance=_opt_float(raw.get("performance")),
                drift_share=_opt_float(raw.get("drift_share")),
                drifted_features=[str(f) for f in raw.get("drifted_features") or []],
                prediction_drift=_opt_float(raw.get("prediction_drift")),
                segment_performance={
                    str(k): {"value": float(v["value"]), "n": int(v["n"])}
                    for k, v in (raw.get("segment_performance") or {}).items()
                    if v.get("value") is not None
                },
                estimated_performance=_opt_float(raw.get("estimated_performance")),
                change=dict(raw["change"]) if raw.get("change") else None,
                weighted_drift_share=_opt_float(raw.get("weighted_drift_share")),
                coverage=_coverage(raw.get("coverage")),
            )
        except KeyError as exc:
            raise DataError(f"monitoring summary has no {exc.args[0]!r}: it needs n_predictions, metric and window_end") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"monitoring summary is malformed: {exc}") from None


@dataclass(frozen=True)
class Reference:
    """The level a performance metric is held to, and how it came to be."""

    value: float
    how: str
    set_at: datetime
    # consecutive retrains whose holdout score stayed short of it, and the best of those
    shortfalls: int = 0
    best_shortfall: float | None = None
    # promotions it has been carried across (a new champion scored below it)
    carried: int = 0

    @property
    def describe(self) -> str:
        extra = f", carried across {self.carried} promotion{'s' * (self.carried > 1)}" if self.carried else ""
        return self.how + extra

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "how": self.how, "set_at": self.set_at.isoformat(), "shortfalls": self.shortfalls,
                "best_shortfall": self.best_shortfall, "carried": self.carried}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Reference:
        best = raw.get("best_shortfall")
        return cls(float(raw["value"]), str(raw["how"]), _time(raw["set_at"]), int(raw.get("shortfalls", 0)),
                   None if best is None else float(best), int(raw.get("carried", 0)))


def carry(old: Reference | None, value: float, how: str, now: datetime, metric: str) -> Reference:
    """The better of a carried reference and a new value; never lower than ``old``."""
    if old is None or improvement(metric, value, old.value) >= 0:
        return Reference(value, how, now)
    return replace(old, carried=old.carried + 1)


@dataclass(frozen=True)
class ChangeState:
    """A change located in a champion's labelled errors, and the retrains made on rows after it.

    ``since`` is the time of the first row of the new concept; ``version`` the champion whose
    errors showed it; ``trained_rows`` the post-change labelled rows the latest retrain read
    (0 until the first one), which paces the refreshes.
    """

    since: datetime
    found_at: datetime
    version: int
    trained_rows: int = 0
    level_before: float | None = None
    level_after: float | None = None
    statistic: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "found_at": self.found_at.isoformat(), "version": self.version,
                "trained_rows": self.trained_rows, "level_before": self.level_before,
                "level_after": self.level_after, "statistic": self.statistic}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ChangeState:
        return cls(_time(raw["since"]), _time(raw["found_at"]), int(raw["version"]), int(raw.get("trained_rows", 0)),
                   _opt_float(raw.get("level_before")), _opt_float(raw.get("level_after")),
                   _opt_float(raw.get("statistic")))


@dataclass(frozen=True)
class TriggerState:
    """What the triggers remember between ticks; JSON round-trippable.

    The functions of this module never change a state in place; they return a new one.
    """

    metric: str | None = None
    reference: Reference | None = None
    segment_references: dict[str, Reference] = field(default_factory=dict)
    # the label-free estimate's own baseline (per champion)
    estimated_reference: Reference | None = None
    last_fired: dict[str, datetime] = field(default_factory=dict)
    last_watch: dict[str, datetime] = field(default_factory=dict)
    # cron ticks are counted from here (the first tick seen, then each scheduled firing)
    schedule_anchor: datetime | None = None
    # (time, cost) of the retrains of the current budget period
    retrains: list[tuple[datetime, float]] = field(default_factory=list)
    last_cost: float | None = None
    # the latest change located in the champion's errors (None: none found yet)
    change: ChangeState | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        return {
            "metric": self.metric,
            "reference": self.reference.to_dict() if self.reference else None,
            "segment_references": {k: r.to_dict() for k, r in self.segment_references.items()},
            "estimated_reference": self.estimated_reference.to_dict() if self.estimated_reference else None,
            "last_fired": {k: v.isoformat() for k, v in self.last_fired.items()},
            "last_watch": {k: v.isoformat() for k, v in self.last_watch.items()},
            "schedule_anchor": self.schedule_anchor.isoformat() if self.schedule_anchor else None,
            "retrains": [[t.isoformat(), c] for t, c in self.retrains],
            "last_cost": self.last_cost,
            "change": self.change.to_dict() if self.change else None,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> TriggerState:
        """Rebuild from :meth:`to_dict` output (``None`` or ``{}`` → a fresh state).

        Raises:
            StoreError: the stored state is malformed.
        """
        if not raw:
            return cls()
        try:
            ref, est = raw.get("reference"), raw.get("estimated_reference")
            anchor = raw.get("schedule_anchor")
            cost = raw.get("last_cost")
            return cls(
                metric=raw.get("metric"),
                reference=Reference.from_dict(ref) if ref else None,
                segment_references={str(k): Reference.from_dict(v) for k, v in (raw.get("segment_references") or {}).items()},
                estimated_reference=Reference.from_dict(est) if est else None,
                last_fired={str(k): _time(v) for k, v in (raw.get("last_fired") or {}).items()},
                last_watch={str(k): _time(v) for k, v in (raw.get("last_watch") or {}).items()},
                schedule_anchor=_time(anchor) if anchor else None,
                retrains=[(_time(t), float(c)) for t, c in raw.get("retrains") or []],
                last_cost=None if cost is None else float(cost),
                change=ChangeState.from_dict(raw["change"]) if raw.get("change") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(
                f"the stored trigger state is malformed ({type(exc).__name__}: {exc}); delete it to start "
                "afresh (the references are then set again from the next labelled window)"
            ) from None


@dataclass(frozen=True)
class TriggerDecision:
    """One trigger's verdict on one tick; ``kind`` is the event to write (None when quiet)."""

    name: str
    status: Status
    value: float | None
    threshold: float | None
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        return EVENT_KINDS[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "kind": self.kind, "value": self.value,
                "threshold": self.threshold, "reason": self.reason, "numbers": self.numbers}


@dataclass(frozen=True)
class TriggerOutcome:
    """All decisions of a tick, whether to retrain (and why), and the state to store."""

    decisions: list[TriggerDecision]
    retrain: bool
    reason: str
    new_state: TriggerState

    @property
    def fired(self) -> list[TriggerDecision]:
        return [d for d in self.decisions if d.status == "fired"]

    def events(self) -> list[dict[str, Any]]:
        """``Store.add_event`` keyword arguments, one per decision worth recording."""
        return [{"kind": d.kind, "subject": d.name, "reason": d.reason, "numbers": {**d.numbers, "status": d.status}}
                for d in self.decisions if d.kind is not None]


@dataclass
class Signal:
    """A trigger's reading before cooldown and budget: over/under threshold, or no reading."""

    name: str
    state: Literal["over", "under", "none", "insufficient", "watch"]
    reason: str
    value: float | None = None
    threshold: float | None = None
    numbers: dict[str, Any] = field(default_factory=dict)



def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def utc(value: datetime) -> datetime:
    """A timezone-aware UTC time (a naive time is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(value: Any) -> datetime:
    return utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))

