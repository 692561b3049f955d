"""What the triggers read and remember, read back field by field.

A monitoring summary is rebuilt from a report's dict, and the trigger state is stored as
JSON between ticks: a key misspelt on either side silently drops a signal or forgets a
reference, so each test writes every key and compares the whole object read back. The
decisions' dicts are what the controller and the fleet view record.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from modelpilot.errors import DataError, StoreError
from modelpilot.policy.trigger_state import (
    ChangeState,
    MonitoringSummary,
    Reference,
    RowClock,
    TriggerDecision,
    TriggerOutcome,
    TriggerState,
    carry,
    utc,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
CHANGE = {"found": True, "since": "2023-12-31T12:00:00+00:00", "rows_since_known": 40}


def full_report() -> dict[str, Any]:
    return {
        "n_predictions": 900, "n_labelled": 300, "metric": "accuracy", "window_end": "2024-01-01T00:00:00+00:00",
        "performance": 0.8, "drift_share": 0.25, "drifted_features": ["age", 7], "prediction_drift": 0.125,
        "segment_performance": {"region=n": {"value": 0.7, "n": 100}, "region=s": {"value": None, "n": 0}},
        "estimated_performance": 0.75, "change": CHANGE, "weighted_drift_share": 0.5,
    }


def test_a_summary_reads_every_key_of_a_report() -> None:
    assert MonitoringSummary.from_dict(full_report()) == MonitoringSummary(
        n_predictions=900, n_labelled=300, metric="accuracy", window_end=T0, performance=0.8, drift_share=0.25,
        drifted_features=["age", "7"], prediction_drift=0.125,
        segment_performance={"region=n": {"value": 0.7, "n": 100}},  # a segment without a value is left out
        estimated_performance=0.75, change=CHANGE, weighted_drift_share=0.5,
    )


def test_a_minimal_report_leaves_every_optional_reading_empty() -> None:
    minimal = {"n_predictions": "12", "metric": "rmse", "window_end": datetime(2024, 1, 1), "change": {}}
    assert MonitoringSummary.from_dict(minimal) == MonitoringSummary(
        n_predictions=12, n_labelled=0, metric="rmse", window_end=T0)
    # a naive or non-UTC end is read as UTC; numbers given as strings are converted
    shifted = MonitoringSummary.from_dict({**full_report(), "window_end": "2024-01-01T02:00:00+02:00",
                                           "n_labelled": "5", "performance": "0.5"})
    assert shifted.window_end == T0 and shifted.window_end.tzinfo == UTC
    assert (shifted.n_labelled, shifted.performance) == (5, 0.5)
    assert shifted.n_labelled.__class__ is int and shifted.performance.__class__ is float


def test_a_summary_missing_a_required_key_or_malformed_says_so() -> None:
    for key in ("n_predictions", "metric", "window_end"):
        raw = {k: v for k, v in full_report().items() if k != key}
        with pytest.raises(DataError) as raised:
            MonitoringSummary.from_dict(raw)
        assert str(raised.value) == f"monitoring summary has no {key!r}: it needs n_predictions, metric and window_end"
    with pytest.raises(DataError) as malformed:
        MonitoringSummary.from_dict({**full_report(), "performance": "high"})
    assert str(malformed.value) == "monitoring summary is malformed: could not convert string to float: 'high'"


def test_rows_since_counts_the_clock_and_is_zero_without_one() -> None:
    bare = MonitoringSummary(n_predictions=1, n_labelled=1, metric="accuracy", window_end=T0)
    assert bare.rows_since(T0 - HOUR) == 0
    clocked = MonitoringSummary(n_predictions=1, n_labelled=1, metric="accuracy", window_end=T0,
                                rows=RowClock.of([T0 - HOUR, T0, T0]))
    assert (clocked.rows_since(T0 - 2 * HOUR), clocked.rows_since(T0 - HOUR), clocked.rows_since(T0)) == (3, 2, 0)


def test_a_row_clock_counts_rows_strictly_after_a_time() -> None:
    clock = RowClock.of([T0 + HOUR, T0, datetime(2024, 1, 1, 2)])  # any order; a naive time is UTC
    assert [clock.since(T0 - HOUR), clock.since(T0), clock.since(T0 + HOUR), clock.since(T0 + 2 * HOUR)] == [3, 2, 1, 0]
    counted = RowClock.of_counts([T0 + HOUR, T0], [5, 3])
    assert [counted.since(T0 - HOUR), counted.since(T0), counted.since(T0 + HOUR)] == [8, 5, 0]
    # a negative count is no rows
    assert RowClock.of_counts([T0, T0 + HOUR], [-4, 2]).since(T0 - HOUR) == 2
    assert RowClock.of_counts([], []).since(T0) == 0
    assert RowClock.of_counts([datetime(2024, 1, 1, 1), T0], [5, 3]).since(T0) == 5  # naive and aware times


def test_a_row_clock_keeps_the_nanoseconds_of_pandas_times() -> None:
    just_after = pd.Timestamp(T0) + pd.Timedelta(100, "ns")
    assert RowClock.of(pd.Series([just_after])).since(T0) == 1
    assert RowClock.of_counts([just_after], [4]).since(T0) == 4


def test_a_reference_round_trips_and_describes_its_carries() -> None:
    ref = Reference(0.8, "v1 validation", T0, shortfalls=2, best_shortfall=0.7, carried=3)
    assert ref.to_dict() == {"value": 0.8, "how": "v1 validation", "set_at": "2024-01-01T00:00:00+00:00",
                             "shortfalls": 2, "best_shortfall": 0.7, "carried": 3}
    assert Reference.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    assert Reference.from_dict({"value": 1, "how": "h", "set_at": "2024-01-01T00:00:00"}) == Reference(1.0, "h", T0)
    assert ref.describe == "v1 validation, carried across 3 promotions"
    assert Reference(0.8, "v1 validation", T0, carried=1).describe == "v1 validation, carried across 1 promotion"
    assert Reference(0.8, "v1 validation", T0).describe == "v1 validation"


def test_carry_keeps_the_better_of_the_old_reference_and_the_new_value() -> None:
    old = Reference(0.8, "v1", T0)
    assert carry(None, 0.5, "v2", T0 + HOUR, "accuracy") == Reference(0.5, "v2", T0 + HOUR)
    assert carry(old, 0.8, "v2", T0 + HOUR, "accuracy") == Reference(0.8, "v2", T0 + HOUR)  # equal: replaced
    assert carry(old, 0.7, "v2", T0 + HOUR, "accuracy") == Reference(0.8, "v1", T0, carried=1)
    # an error metric: lower is better
    assert carry(old, 0.7, "v2", T0 + HOUR, "rmse") == Reference(0.7, "v2", T0 + HOUR)
    assert carry(Reference(0.8, "v1", T0, carried=1), 0.9, "v2", T0, "rmse").carried == 2


def test_a_change_state_round_trips_with_its_defaults() -> None:
    change = ChangeState(since=T0, found_at=T0 + HOUR, version=3, trained_rows=40, level_before=0.9,
                         level_after=0.6, statistic=12.5)
    assert change.to_dict() == {"since": "2024-01-01T00:00:00+00:00", "found_at": "2024-01-01T01:00:00+00:00",
                                "version": 3, "trained_rows": 40, "level_before": 0.9, "level_after": 0.6,
                                "statistic": 12.5}
    assert ChangeState.from_dict(change.to_dict()) == change
    assert ChangeState.from_dict({"since": T0, "found_at": T0, "version": "2"}) == ChangeState(T0, T0, 2)


def full_state() -> TriggerState:
    return TriggerState(
        metric="accuracy",
        reference=Reference(0.8, "v1 validation", T0, shortfalls=1, best_shortfall=0.75),
        segment_references={"region=n": Reference(0.7, "v1 segment", T0)},
        estimated_reference=Reference(0.85, "v1 estimate", T0, carried=1),
        last_fired={"performance_drop": T0 + HOUR},
        last_watch={"feature_drift": T0 + 2 * HOUR},
        schedule_anchor=T0 - HOUR,
        retrains=[(T0, 1.5), (T0 + HOUR, 2.0)],
        last_cost=2.0,
        change=ChangeState(since=T0, found_at=T0 + HOUR, version=1),
    )


def test_the_trigger_state_is_stored_under_these_keys() -> None:
    state = full_state()
    assert state.to_dict() == {
        "metric": "accuracy",
        "reference": state.reference.to_dict() if state.reference else None,
        "segment_references": {"region=n": Reference(0.7, "v1 segment", T0).to_dict()},
        "estimated_reference": Reference(0.85, "v1 estimate", T0, carried=1).to_dict(),
        "last_fired": {"performance_drop": "2024-01-01T01:00:00+00:00"},
        "last_watch": {"feature_drift": "2024-01-01T02:00:00+00:00"},
        "schedule_anchor": "2023-12-31T23:00:00+00:00",
        "retrains": [["2024-01-01T00:00:00+00:00", 1.5], ["2024-01-01T01:00:00+00:00", 2.0]],
        "last_cost": 2.0,
        "change": ChangeState(since=T0, found_at=T0 + HOUR, version=1).to_dict(),
    }
    assert TriggerState().to_dict() == {
        "metric": None, "reference": None, "segment_references": {}, "estimated_reference": None, "last_fired": {},
        "last_watch": {}, "schedule_anchor": None, "retrains": [], "last_cost": None, "change": None,
    }


def test_every_field_of_the_trigger_state_is_read_back() -> None:
    state = full_state()
    assert TriggerState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    # each field on its own, so that no default can stand in for a field that was read
    for name, value in vars(state).items():
        alone = TriggerState(**{name: value})
        assert TriggerState.from_dict(alone.to_dict()) == alone, name
    assert TriggerState.from_dict({}) == TriggerState() and TriggerState.from_dict(None) == TriggerState()
    assert TriggerState.from_dict({"last_cost": 0}).last_cost == 0.0


def test_a_malformed_trigger_state_names_the_error_and_the_way_out() -> None:
    with pytest.raises(StoreError) as raised:
        TriggerState.from_dict({"reference": {"how": "v1"}})
    assert str(raised.value) == ("the stored trigger state is malformed (KeyError: 'value'); delete it to start afresh "
                                 "(the references are then set again from the next labelled window)")


def test_a_decision_dict_holds_every_field_and_the_event_kind() -> None:
    decision = TriggerDecision("performance_drop", "fired", 0.7, 0.05, "dropped", {"reference": 0.8})
    assert decision.to_dict() == {"name": "performance_drop", "status": "fired", "kind": "trigger_fired",
                                  "value": 0.7, "threshold": 0.05, "reason": "dropped", "numbers": {"reference": 0.8}}
    kinds = {status: TriggerDecision("x", status, None, None, "").kind
             for status in ("fired", "suppressed_cooldown", "suppressed_budget", "insufficient_samples", "watch",
                            "quiet")}
    assert kinds == {"fired": "trigger_fired", "suppressed_cooldown": "trigger_suppressed",
                     "suppressed_budget": "trigger_suppressed", "insufficient_samples": "trigger_insufficient_samples",
                     "watch": "drift_watch", "quiet": None}


def test_an_outcome_lists_what_fired_and_an_event_per_decision_that_is_not_quiet() -> None:
    fired = TriggerDecision("schedule", "fired", None, None, "cron tick", {"tick": "03:00"})
    watch = TriggerDecision("feature_drift", "watch", 0.4, 0.3, "drifting", {})
    quiet = TriggerDecision("performance_drop", "quiet", 0.8, 0.05, "fine", {})
    out = TriggerOutcome([fired, watch, quiet], True, "schedule fired", TriggerState())
    assert out.fired == [fired]
    assert out.events() == [
        {"kind": "trigger_fired", "subject": "schedule", "reason": "cron tick",
         "numbers": {"tick": "03:00", "status": "fired"}},
        {"kind": "drift_watch", "subject": "feature_drift", "reason": "drifting", "numbers": {"status": "watch"}},
    ]


def test_times_are_read_as_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        naive, tokyo = utc(datetime(2024, 1, 1)), utc(datetime(2024, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert naive.isoformat() == "2024-01-01T00:00:00+00:00"
    assert tokyo.isoformat() == "2024-01-01T00:00:00+00:00"
