"""The decide phase of a tick: the triggers on the monitored summary, one event per decision.

The references start from the champion's own validation (overall and per segment) the first
time, so a drift that began before the first tick shows against what the model scored;
:func:`~modelpilot.policy.triggers.evaluate` decides; a forced reason (a backtest's fixed
cadence) turns the outcome into a retrain whatever the triggers say. :func:`retrain_due`
then says whether a retrain is due on this tick: the triggers fired, or a retrain that
waited for data is still waiting (for at most one cooldown).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from modelpilot.config import PilotConfig, TriggerRule
from modelpilot.controller.monitor import validation_segments
from modelpilot.policy.trigger_state import RowClock
from modelpilot.policy.triggers import (
    MonitoringSummary,
    TriggerOutcome,
    TriggerState,
    evaluate,
    reset_reference,
)
from modelpilot.store import ModelVersionRecord, Store


def decide(cfg: PilotConfig, store: Store, version: ModelVersionRecord, summary: dict[str, Any],
           triggers: TriggerState, now: datetime, *, rows: RowClock | None = None,
           force: str | None = None) -> TriggerOutcome:
    """Evaluate the triggers for the champion ``version`` and write the decisions' events.

    ``rows``: the labelled rows' times, for the waits counted in rows (cooldowns, the budget).

    Returns:
        The outcome; ``outcome.new_state`` is the trigger state to store.
    """
    if triggers.reference is None or triggers.metric != cfg.primary_metric:
        # references from the champion's own validation, overall and per segment, so a
        # drift that began before the first tick shows against what the model scored
        base = version.metrics.get(cfg.primary_metric)
        if base is not None:
            triggers = reset_reference(
                triggers, base, f"v{version.version} validation", metric=cfg.primary_metric, now=now,
                triggers=cfg.triggers, segments=validation_segments(
                    store, version, cfg.primary_metric, cfg.triggers.segment_performance_drop.min_samples),
            )
    ms = replace(MonitoringSummary.from_dict({**summary, "window_end": summary["window_end"] or now.isoformat()}),
                 rows=rows)
    outcome = evaluate(cfg, ms, triggers, now)
    if force and not outcome.retrain:
        outcome = replace(outcome, retrain=True, reason=force)
    for decision in outcome.decisions:
        if decision.kind:
            store.add_event(
                decision.kind, model=cfg.model.name, subject=decision.name, actor="controller",
                reason=decision.reason,
                numbers={**decision.numbers, "value": decision.value, "threshold": decision.threshold},
            )
    return outcome


def retrain_due(cfg: PilotConfig, state: dict[str, Any], outcome: TriggerOutcome, now: datetime,
                rows: RowClock | None = None) -> str | None:
    """The reason of the retrain due on this tick, or None.

    A retrain waiting for data (``state["waiting"]``) stays due until it starts, or until it
    has waited longer than a whole cooldown of the performance trigger (in labelled rows
    served since it began waiting, or in time: as the cooldown is given): then the wait is
    dropped from ``state`` and the triggers decide afresh.
    """
    waiting = state.get("waiting")
    if waiting and _waited_out(cfg.triggers.performance_drop, datetime.fromisoformat(waiting["since"]), now, rows):
        state.pop("waiting")  # waited a whole cooldown: let the triggers decide afresh
        waiting = None
    if outcome.retrain:
        return outcome.reason
    return str(waiting["reason"]) if waiting else None


def _waited_out(rule: TriggerRule, since: datetime, now: datetime, rows: RowClock | None) -> bool:
    if rule.cooldown is not None:
        return now - since > timedelta(seconds=rule.cooldown)
    if rule.cooldown_rows is None:
        return True
    return (rows.since(since) if rows is not None else 0) > rule.cooldown_rows
