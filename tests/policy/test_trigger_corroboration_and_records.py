"""Triggers at the edges the other trigger tests leave open: what a retrain records in the
state, how a lowered reference clears the rest, the durations a cooldown reason quotes,
and drift corroborated by a rising error rate or a falling estimate at exactly half its
critical value or threshold.

Values are exact binary fractions (0.75, 0.625, 0.125) so the boundaries are met exactly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelpilot.config import PilotConfig, TriggersConfig
from modelpilot.policy.triggers import (
    MonitoringSummary,
    Reference,
    TriggerOutcome,
    TriggerState,
    evaluate,
    record_retrain,
    reset_reference,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_cfg(triggers: dict[str, Any] | None = None) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}, "triggers": triggers or {},
                                  "budget": {"max_retrains": None}})


def reason(out: TriggerOutcome, name: str) -> tuple[str, str]:
    d = next(d for d in out.decisions if d.name == name)
    return d.status, d.reason


# --------------------------------------------------------------------------- record_retrain


def test_a_retrain_is_counted_and_its_cost_kept_for_the_next_projection() -> None:
    assert record_retrain(TriggerState(), T0, 2) == TriggerState(retrains=[(T0, 2.0)], last_cost=2.0)
    # a score without a reference to hold it against changes nothing else
    fresh = TriggerState(metric="accuracy")
    assert record_retrain(fresh, T0, 1.5, score=0.5) == TriggerState(metric="accuracy", retrains=[(T0, 1.5)],
                                                                     last_cost=1.5)


def test_a_retrain_that_reaches_the_bar_clears_the_shortfalls_and_their_best() -> None:
    triggers = TriggersConfig.model_validate({"performance_drop": {"threshold": 0.125}})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0)
    short = record_retrain(state, T0, 1.0, score=0.5, triggers=triggers)
    assert short.reference == Reference(0.75, "v1 validation", T0, shortfalls=1, best_shortfall=0.5)
    # a second shortfall no better than the best keeps the best
    again = record_retrain(short, T0, 1.0, score=0.5, triggers=triggers)
    assert again.reference == Reference(0.75, "v1 validation", T0, shortfalls=2, best_shortfall=0.5)
    reached = record_retrain(short, T0, 1.0, score=0.625, triggers=triggers)  # exactly 0.125 short: not a shortfall
    assert reached.reference == Reference(0.75, "v1 validation", T0)


def test_a_lowered_reference_restarts_the_segment_and_estimate_baselines() -> None:
    triggers = TriggersConfig.model_validate({"performance_drop": {"threshold": 0.125}, "reference_accept_after": 2})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0,
                            segments={"region=n": 0.75}, estimated=0.75)
    state = record_retrain(state, T0, 1.0, score=0.5, triggers=triggers)
    later = T0 + timedelta(hours=1)
    lowered = record_retrain(state, later, 1.0, score=0.5625, triggers=triggers)
    assert lowered.reference == Reference(
        0.5625, "lowered from 0.7500: 2 consecutive retrains on recent data stayed more than 0.125 short of it "
                "(best 0.5625)", later)
    assert lowered.segment_references == {} and lowered.estimated_reference is None
    assert lowered.retrains == [(T0, 1.0), (later, 1.0)] and lowered.last_cost == 1.0


# --------------------------------------------------------------------------- cooldown durations


def cooled(cooldown: str, after: float) -> str:
    cfg = make_cfg({"performance_drop": {"cooldown": cooldown}})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0)
    state = TriggerState(**{**vars(state), "last_fired": {"performance_drop": T0}})
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.5)
    status, text = reason(evaluate(cfg, s, state, T0 + timedelta(seconds=after)), "performance_drop")
    assert status == "suppressed_cooldown"
    return text.split("; suppressed by cooldown: ")[1]


def test_a_cooldown_reason_quotes_seconds_minutes_or_hours() -> None:
    assert cooled("2h", 119) == "fired 119 s ago, cooldown 2.0 h, next possible at 2024-01-01T02:00:00+00:00"
    assert cooled("2h", 120) == "fired 2 min ago, cooldown 2.0 h, next possible at 2024-01-01T02:00:00+00:00"
    assert cooled("3h", 7199) == "fired 120 min ago, cooldown 3.0 h, next possible at 2024-01-01T03:00:00+00:00"
    assert cooled("3h", 7200) == "fired 2.0 h ago, cooldown 3.0 h, next possible at 2024-01-01T03:00:00+00:00"
    # 9180.5 s is 2.55014 h: one more second in the hour would show 2.5
    assert cooled("1d", 9180.5).startswith("fired 2.6 h ago, cooldown 24.0 h, ")
    assert cooled("7199s", 60) == "fired 60 s ago, cooldown 120 min, next possible at 2024-01-01T01:59:59+00:00"


# --------------------------------------------------------------------------- drift corroboration


def drift(change: dict[str, Any] | None = None, estimated: float | None = None,
          performance: float = 0.75) -> tuple[str, str]:
    cfg = make_cfg({"feature_drift": {"enabled": True}, "estimated_performance_drop": {"threshold": 0.25}})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0, estimated=0.75)
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=performance,
                          drift_share=0.75, change=change, estimated_performance=estimated)
    return reason(evaluate(cfg, s, state, T0), "feature_drift")


def test_an_error_statistic_at_exactly_half_its_critical_value_corroborates_drift() -> None:
    status, text = drift({"statistic": 1.0, "threshold": 2.0})
    assert status == "fired"
    assert text == ("share of drifted features 0.7500 on 1000 predictions (threshold 0.5); the champion's error rate "
                    "is rising (change statistic 1.00, at least 0.5 of its critical value 2.00)")
    assert drift({"statistic": 0.999, "threshold": 2.0})[0] == "watch"


def test_an_error_statistic_without_a_critical_value_or_a_critical_value_without_a_statistic_is_no_rise() -> None:
    assert drift({"statistic": 5.0, "threshold": 0.0})[0] == "watch"
    assert drift({"statistic": 5.0})[0] == "watch"
    assert drift({"statistic": None, "threshold": 2.0})[0] == "watch"


def test_an_estimate_at_exactly_half_its_threshold_below_its_baseline_corroborates_drift() -> None:
    status, text = drift(estimated=0.625)  # 0.125 below 0.75, half of the 0.25 threshold
    assert status == "fired"
    assert text.startswith("share of drifted features 0.7500 on 1000 predictions (threshold 0.5); the label-free "
                           "estimate is falling (estimated accuracy 0.6250, ")
    assert drift(estimated=0.625 + 1e-9)[0] == "watch"
    watch = drift(estimated=0.75, performance=0.734375)[1]  # 1/64 below the reference, under the 0.025 bar
    assert watch.endswith("; watching, not retraining: labelled accuracy 0.7344 holds (+0.0156 against the reference, "
                          "under 0.0250) (triggers.drift_requires_performance)")


# --------------------------------------------------------------------------- reset_reference


def test_a_promotion_carries_the_better_references_and_restarts_the_estimate() -> None:
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0,
                            segments={"a=1": 0.75, "a=2": 0.5}, estimated=0.75)
    later = T0 + timedelta(days=1)
    promoted = reset_reference(state, 0.625, "v2 holdout", metric="accuracy", now=later,
                               segments={"a=2": 0.625, "a=3": 0.5})
    assert promoted == TriggerState(
        metric="accuracy",
        reference=Reference(0.75, "v1 validation", T0, carried=1),
        segment_references={"a=1": Reference(0.75, "v1 validation", T0), "a=2": Reference(0.625, "v2 holdout", later),
                            "a=3": Reference(0.5, "v2 holdout", later)},
        estimated_reference=None)
    # a segment the new champion does worse in keeps its carried reference
    worse = reset_reference(state, 0.75, "v2 holdout", metric="accuracy", now=later, segments={"a=2": 0.25})
    assert worse.segment_references["a=2"] == Reference(0.5, "v1 validation", T0, carried=1)
    with_estimate = reset_reference(state, 0.625, "v2 holdout", metric="accuracy", now=later, estimated=0.5)
    assert with_estimate.estimated_reference == Reference(0.5, "v2 holdout", later)


def test_references_restart_after_a_change_under_promotion_mode_or_for_a_new_metric() -> None:
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0, segments={"a=1": 0.75})
    fresh = TriggerState(metric="accuracy", reference=Reference(0.625, "v2 holdout", T0),
                         segment_references={"a=1": Reference(0.5, "v2 holdout", T0)})
    after_change = reset_reference(state, 0.625, "v2 holdout", metric="accuracy", now=T0, segments={"a=1": 0.5},
                                   carry_over=False)
    assert after_change == fresh
    promotion = TriggersConfig.model_validate({"reference": "promotion"})
    assert reset_reference(state, 0.625, "v2 holdout", metric="accuracy", now=T0, segments={"a=1": 0.5},
                           triggers=promotion) == fresh
    rmse = reset_reference(state, 2.0, "v2 holdout", metric="rmse", now=T0)
    assert rmse == TriggerState(metric="rmse", reference=Reference(2.0, "v2 holdout", T0))


def test_a_reference_set_without_a_time_is_set_at_the_current_utc_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # a machine whose local time is not UTC
    time.tzset()
    try:
        before = datetime.now(UTC)
        state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy")
        after = datetime.now(UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert state.reference is not None and before <= state.reference.set_at <= after


def test_a_performance_equal_to_its_reference_reads_as_not_below_it() -> None:
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0)
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.75)
    assert reason(evaluate(make_cfg(), s, state, T0), "performance_drop") == (
        "quiet", "accuracy 0.7500 on 800 labelled predictions is 0.0000 above the reference 0.7500 (v1 validation; "
                 "threshold 0.05)")


def test_a_new_primary_metric_drops_the_old_references_before_reading() -> None:
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0, segments={"a=1": 0.75},
                            estimated=0.75)
    s = MonitoringSummary(n_predictions=1000, n_labelled=100, metric="rmse", window_end=T0, performance=2.0)
    out = evaluate(make_cfg(), s, state, T0)
    assert out.new_state.metric == "rmse" and out.new_state.reference is None
    assert out.new_state.segment_references == {} and out.new_state.estimated_reference is None
    assert reason(out, "performance_drop") == ("quiet", "no reference yet and only 100 labelled predictions")


def test_a_drift_watch_already_reported_is_quiet_until_its_cooldown_ends() -> None:
    cfg = make_cfg({"feature_drift": {"enabled": True, "cooldown": "1h"}})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0)
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.75,
                          drift_share=0.75)
    first = evaluate(cfg, s, state, T0)
    assert reason(first, "feature_drift")[0] == "watch" and first.new_state.last_watch == {"feature_drift": T0}
    again = evaluate(cfg, s, first.new_state, T0 + timedelta(minutes=59))
    status, text = reason(again, "feature_drift")
    assert status == "quiet" and text.endswith("; already reported at 2024-01-01T00:00:00+00:00")
    assert again.new_state.last_watch == {"feature_drift": T0}
