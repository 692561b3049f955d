"""Triggers: each one firing and not, samples, cooldown, budget, schedule, drift-as-watch,
the non-lowering reference across a gradual drift, and the state's JSON round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelpilot.config import PilotConfig
from modelpilot.errors import ConfigError, DataError, StoreError
from modelpilot.policy.triggers import (
    MonitoringSummary,
    TriggerDecision,
    TriggerOutcome,
    TriggerState,
    evaluate,
    record_retrain,
    reset_reference,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def make_cfg(triggers: dict[str, Any] | None = None, budget: dict[str, Any] | None = None) -> PilotConfig:
    return PilotConfig.from_dict(
        {"model": {"name": "churn", "target": "y"}, "triggers": triggers or {}, "budget": budget or {}}
    )


def summary(**kw: Any) -> MonitoringSummary:
    base: dict[str, Any] = {
        "n_predictions": 1000,
        "n_labelled": 800,
        "metric": "accuracy",
        "window_end": T0,
        "performance": 0.79,
    }
    return MonitoringSummary(**{**base, **kw})


def with_ref(value: float = 0.793, metric: str = "accuracy", **kw: Any) -> TriggerState:
    return reset_reference(TriggerState(), value, "v1 validation", metric=metric, now=T0, **kw)


def decision(outcome: TriggerOutcome, name: str) -> TriggerDecision:
    return next(d for d in outcome.decisions if d.name == name)


# --------------------------------------------------------------------------- performance


def test_performance_drop_fires_with_the_numbers_in_the_reason() -> None:
    out = evaluate(make_cfg(), summary(performance=0.712), with_ref(0.793), T0 + HOUR)
    d = decision(out, "performance_drop")
    assert d.status == "fired" and d.kind == "trigger_fired" and out.retrain
    assert "accuracy 0.7120 on 800 labelled predictions is 0.0810 below the reference 0.7930" in d.reason
    assert "threshold 0.05" in d.reason
    assert d.value == pytest.approx(0.081) and d.threshold == 0.05
    assert d.numbers["n_labelled"] == 800 and d.numbers["reference"] == 0.793
    assert out.new_state.last_fired["performance_drop"] == T0 + HOUR
    assert "0.0810 below" in out.reason


def test_performance_holding_is_quiet() -> None:
    out = evaluate(make_cfg(), summary(performance=0.78), with_ref(0.793), T0 + HOUR)
    d = decision(out, "performance_drop")
    assert d.status == "quiet" and d.kind is None and not out.retrain
    assert out.events() == []


def test_lower_is_better_metric_drops_upwards() -> None:
    state = with_ref(2.0, metric="rmse")
    out = evaluate(make_cfg(), summary(metric="rmse", performance=2.3), state, T0 + HOUR)
    d = decision(out, "performance_drop")
    assert d.status == "fired" and d.value == pytest.approx(0.15)  # 15 % worse than the reference
    assert "15.0 % above the reference 2.0000" in d.reason and "threshold 0.05 = 5.0 % of the reference" in d.reason
    better = evaluate(make_cfg(), summary(metric="rmse", performance=1.8), state, T0 + HOUR)
    assert decision(better, "performance_drop").status == "quiet"


def test_insufficient_samples_does_not_fire() -> None:
    out = evaluate(make_cfg(), summary(performance=0.60, n_labelled=50), with_ref(0.793), T0 + HOUR)
    d = decision(out, "performance_drop")
    assert d.status == "insufficient_samples" and not out.retrain
    assert d.kind == "trigger_insufficient_samples" and "only 50 samples, min_samples is 200" in d.reason


def test_reference_is_set_from_the_first_labelled_window_when_none_was_given() -> None:
    cfg = make_cfg()
    first = evaluate(cfg, summary(performance=0.85), TriggerState(), T0)
    assert decision(first, "performance_drop").status == "quiet" and not first.retrain
    ref = first.new_state.reference
    assert ref is not None and ref.value == 0.85 and "first labelled window" in ref.how
    later = evaluate(cfg, summary(performance=0.75), first.new_state, T0 + HOUR)
    assert decision(later, "performance_drop").status == "fired"


def test_evaluate_does_not_change_its_input_state() -> None:
    state = with_ref(0.793)
    before = state.to_dict()
    evaluate(make_cfg(), summary(performance=0.5), state, T0 + HOUR)
    assert state.to_dict() == before


# --------------------------------------------------------------------------- cooldown & budget


def test_cooldown_suppresses_then_lets_fire_again() -> None:
    cfg = make_cfg({"performance_drop": {"threshold": 0.05, "cooldown": "1h"}})
    first = evaluate(cfg, summary(performance=0.70), with_ref(), T0)
    assert first.retrain
    soon = evaluate(cfg, summary(performance=0.70), first.new_state, T0 + timedelta(minutes=10))
    d = decision(soon, "performance_drop")
    assert d.status == "suppressed_cooldown" and d.kind == "trigger_suppressed" and not soon.retrain
    assert "fired 10 min ago, cooldown 60 min" in d.reason and "0.0930 below" in d.reason
    later = evaluate(cfg, summary(performance=0.70), soon.new_state, T0 + 2 * HOUR)
    assert decision(later, "performance_drop").status == "fired"


def test_budget_suppresses_by_count_within_the_rolling_period() -> None:
    cfg = make_cfg(budget={"max_retrains": 2, "period": "7d"})
    state = record_retrain(record_retrain(with_ref(), T0, 1.0), T0 + HOUR, 1.0)
    out = evaluate(cfg, summary(performance=0.70), state, T0 + 3 * HOUR)
    d = decision(out, "performance_drop")
    assert d.status == "suppressed_budget" and d.kind == "trigger_suppressed" and not out.retrain
    assert "2 retrains in the last 7 days reached budget.max_retrains 2" in d.reason
    assert d.numbers["budget_retrains"] == 2
    assert "performance_drop" not in out.new_state.last_fired
    # eight days on, both retrains have left the period
    later = evaluate(cfg, summary(performance=0.70), out.new_state, T0 + timedelta(days=8))
    assert later.retrain and later.new_state.retrains == []


def test_budget_suppresses_by_cost() -> None:
    cfg = make_cfg(budget={"max_retrains": None, "max_cost": 5.0})
    state = record_retrain(with_ref(), T0, 3.0)
    out = evaluate(cfg, summary(performance=0.70), state, T0 + 2 * HOUR)
    d = decision(out, "performance_drop")
    assert d.status == "suppressed_budget"
    assert "3.00 spent" in d.reason and "expected 3.00" in d.reason and "budget.max_cost 5.00" in d.reason
    cheap = record_retrain(with_ref(), T0, 2.0)
    assert evaluate(cfg, summary(performance=0.70), cheap, T0 + 2 * HOUR).retrain


# --------------------------------------------------------------------------- schedule


def test_schedule_fires_when_a_cron_tick_has_passed() -> None:
    cfg = make_cfg({"schedule": "0 3 * * *"})
    quiet = summary(performance=None, n_labelled=0)
    first = evaluate(cfg, quiet, TriggerState(), T0)  # 00:00: counting starts
    assert not first.retrain and first.new_state.schedule_anchor == T0
    early = evaluate(cfg, quiet, first.new_state, T0 + 2 * HOUR)
    assert not early.retrain and "next scheduled tick at 2024-01-01T03:00:00+00:00" in decision(early, "schedule").reason
    due = evaluate(cfg, quiet, early.new_state, T0 + 4 * HOUR)
    d = decision(due, "schedule")
    assert due.retrain and d.status == "fired" and "ticked at 2024-01-01T03:00:00+00:00" in d.reason
    after = evaluate(cfg, quiet, due.new_state, T0 + 5 * HOUR)
    assert not after.retrain and "2024-01-02T03:00:00+00:00" in decision(after, "schedule").reason


def test_schedule_tick_refused_by_the_budget_is_skipped() -> None:
    cfg = make_cfg({"schedule": "0 3 * * *"}, budget={"max_retrains": 0})
    quiet = summary(performance=None, n_labelled=0)
    state = evaluate(cfg, quiet, TriggerState(), T0).new_state
    refused = evaluate(cfg, quiet, state, T0 + 4 * HOUR)
    assert decision(refused, "schedule").status == "suppressed_budget" and not refused.retrain
    assert "retrain refused by the budget" in refused.reason
    again = evaluate(cfg, quiet, refused.new_state, T0 + 5 * HOUR)
    assert decision(again, "schedule").status == "quiet"


def test_bad_cron_expression_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"triggers.schedule: not a cron expression"):
        make_cfg({"schedule": "every sunday"})


# --------------------------------------------------------------------------- drift


def test_feature_drift_alone_is_a_watch_not_a_retrain() -> None:
    cfg = make_cfg({"feature_drift": {"enabled": True, "threshold": 0.5, "cooldown": "1h"}})
    drifted = summary(performance=0.79, drift_share=0.8, drifted_features=["age", "income"])
    out = evaluate(cfg, drifted, with_ref(0.793), T0 + HOUR)
    d = decision(out, "feature_drift")
    assert d.status == "watch" and d.kind == "drift_watch" and not out.retrain
    assert "share of drifted features 0.8000" in d.reason and "watching, not retraining" in d.reason
    assert d.numbers["drifted_features"] == ["age", "income"]
    # the same drift within the cooldown is not reported again; after it, it is
    again = evaluate(cfg, drifted, out.new_state, T0 + HOUR + timedelta(minutes=5))
    assert decision(again, "feature_drift").status == "quiet" and not again.retrain
    assert decision(evaluate(cfg, drifted, again.new_state, T0 + 3 * HOUR), "feature_drift").status == "watch"


def test_drift_under_covariate_shift_never_retrains_over_many_ticks() -> None:
    cfg = make_cfg({"feature_drift": {"enabled": True}, "prediction_drift": {"enabled": True}})
    state = with_ref(0.80)
    for hour in range(48):
        out = evaluate(cfg, summary(performance=0.79, drift_share=0.9, prediction_drift=0.5), state, T0 + hour * HOUR)
        assert not out.retrain
        state = out.new_state


def test_drift_fires_when_labels_are_missing_or_performance_degrades() -> None:
    cfg = make_cfg({"feature_drift": {"enabled": True, "threshold": 0.5}})
    no_labels = evaluate(cfg, summary(performance=None, n_labelled=0, drift_share=0.8), with_ref(), T0 + HOUR)
    assert decision(no_labels, "feature_drift").status == "fired" and no_labels.retrain
    assert "labelled performance unavailable" in decision(no_labels, "feature_drift").reason
    # 0.03 below the reference: under the 0.05 drop threshold, over half of it
    degrading = evaluate(cfg, summary(performance=0.763, drift_share=0.8), with_ref(0.793), T0 + HOUR)
    assert decision(degrading, "performance_drop").status == "quiet"
    assert decision(degrading, "feature_drift").status == "fired" and degrading.retrain
    assert "also degrading" in decision(degrading, "feature_drift").reason


def test_drift_without_the_performance_requirement_fires_alone() -> None:
    cfg = make_cfg({"prediction_drift": {"enabled": True, "threshold": 0.2}, "drift_requires_performance": False})
    out = evaluate(cfg, summary(performance=0.79, prediction_drift=0.35), with_ref(0.793), T0 + HOUR)
    assert decision(out, "prediction_drift").status == "fired" and out.retrain
    calm = evaluate(cfg, summary(performance=0.79, prediction_drift=0.1), with_ref(0.793), T0 + HOUR)
    assert decision(calm, "prediction_drift").status == "quiet"


def test_disabled_triggers_stay_quiet() -> None:
    out = evaluate(make_cfg(), summary(drift_share=1.0, prediction_drift=0.9), with_ref(), T0 + HOUR)
    assert decision(out, "feature_drift").status == "quiet"
    assert "disabled (triggers.feature_drift.enabled)" in decision(out, "feature_drift").reason
    assert not out.retrain


# --------------------------------------------------------------------------- segments, estimate


def test_segment_performance_drop_names_the_segment() -> None:
    state = with_ref(0.80, segments={"region=north": 0.80, "region=south": 0.77})
    segs = {"region=north": {"value": 0.80, "n": 400}, "region=south": {"value": 0.65, "n": 300}}
    out = evaluate(make_cfg(), summary(performance=0.78, segment_performance=segs), state, T0 + HOUR)
    d = decision(out, "segment_performance_drop")
    assert d.status == "fired" and out.retrain and d.value == pytest.approx(0.12)
    assert "segment region=south 0.6500 on 300 labelled predictions is 0.1200 below its reference 0.7700" in d.reason
    assert d.numbers["segment"] == "region=south"
    small = {"region=south": {"value": 0.5, "n": 40}}
    few = evaluate(make_cfg(), summary(segment_performance=small), state, T0 + HOUR)
    assert decision(few, "segment_performance_drop").status == "insufficient_samples"


def test_segment_reference_is_set_from_the_first_window_then_used() -> None:
    cfg = make_cfg()
    first = evaluate(cfg, summary(segment_performance={"plan=pro": {"value": 0.9, "n": 250}}), with_ref(), T0)
    assert decision(first, "segment_performance_drop").status == "quiet"
    assert first.new_state.segment_references["plan=pro"].value == 0.9
    later = evaluate(cfg, summary(segment_performance={"plan=pro": {"value": 0.8, "n": 250}}), first.new_state, T0 + HOUR)
    assert decision(later, "segment_performance_drop").status == "fired"


def test_estimated_performance_drop_only_while_labels_are_missing() -> None:
    cfg = make_cfg({"estimated_performance_drop": {"enabled": True, "threshold": 0.08}})
    unlabelled = dict(performance=None, n_labelled=0)
    first = evaluate(cfg, summary(estimated_performance=0.86, **unlabelled), TriggerState(), T0)
    assert decision(first, "estimated_performance_drop").status == "quiet"
    assert first.new_state.estimated_reference is not None
    out = evaluate(cfg, summary(estimated_performance=0.74, **unlabelled), first.new_state, T0 + HOUR)
    d = decision(out, "estimated_performance_drop")
    assert d.status == "fired" and "estimated accuracy 0.7400 on 1000 unlabelled predictions is 0.1200 below" in d.reason
    labelled = evaluate(cfg, summary(estimated_performance=0.74, performance=0.8), first.new_state, T0 + HOUR)
    assert decision(labelled, "estimated_performance_drop").status == "quiet"


# --------------------------------------------------------------------------- the reference


def _retrain_and_promote(state: TriggerState, when: datetime, score: float, cfg: PilotConfig) -> TriggerState:
    state = record_retrain(state, when, 1.0, score=score, triggers=cfg.triggers)
    return reset_reference(state, score, f"holdout at promotion {when:%H:%M}", metric="accuracy",
                           now=when, triggers=cfg.triggers)


def test_gradual_drift_is_followed_until_the_model_catches_up() -> None:
    cfg = make_cfg({"performance_drop": {"cooldown": "1h"}})  # the ticks below are hours apart
    state = with_ref(0.86)
    now = T0
    # the drift sets in: the champion falls to 0.78 → retrain; v2 recovers only half-way
    out = evaluate(cfg, summary(performance=0.78), state, now)
    assert out.retrain
    state = _retrain_and_promote(out.new_state, now, 0.80, cfg)
    assert state.reference is not None and state.reference.value == 0.86  # carried, not lowered
    now += 2 * HOUR
    out = evaluate(cfg, summary(performance=0.80), state, now)
    d = decision(out, "performance_drop")
    assert out.retrain and "carried across 1 promotion" in d.reason
    # v3 catches up: within the threshold of the carried reference → quiet from now on
    state = _retrain_and_promote(out.new_state, now, 0.84, cfg)
    assert state.reference is not None and state.reference.shortfalls == 0
    for _ in range(5):
        now += 2 * HOUR
        out = evaluate(cfg, summary(performance=0.84), state, now)
        assert not out.retrain
        state = out.new_state


def test_a_reference_reset_at_each_promotion_lowers_its_own_bar() -> None:
    cfg = make_cfg({"reference": "promotion"})
    out = evaluate(cfg, summary(performance=0.78), with_ref(0.86), T0)
    state = _retrain_and_promote(out.new_state, T0, 0.80, cfg)
    assert state.reference is not None and state.reference.value == 0.80
    assert not evaluate(cfg, summary(performance=0.80), state, T0 + 2 * HOUR).retrain


def test_reference_is_lowered_only_after_repeated_shortfalls() -> None:
    cfg = make_cfg()  # reference_accept_after: 3
    state = with_ref(0.86)
    for i in range(2):
        state = record_retrain(state, T0 + i * HOUR, 1.0, score=0.77 + 0.01 * i, triggers=cfg.triggers)
        assert state.reference is not None and state.reference.value == 0.86
    assert state.reference.shortfalls == 2
    state = record_retrain(state, T0 + 3 * HOUR, 1.0, score=0.775, triggers=cfg.triggers)
    assert state.reference is not None and state.reference.value == 0.78  # the best shortfall
    assert "3 consecutive retrains" in state.reference.how
    assert not evaluate(cfg, summary(performance=0.78), state, T0 + 5 * HOUR).retrain
    never = make_cfg({"reference_accept_after": None})
    kept = with_ref(0.86)
    for i in range(5):
        kept = record_retrain(kept, T0 + i * HOUR, 1.0, score=0.77, triggers=never.triggers)
    assert kept.reference is not None and kept.reference.value == 0.86


def test_a_better_promotion_raises_the_reference() -> None:
    state = reset_reference(with_ref(0.80), 0.83, "v2 holdout", metric="accuracy", now=T0 + HOUR)
    assert state.reference is not None and state.reference.value == 0.83 and state.reference.how == "v2 holdout"


# --------------------------------------------------------------------------- plain data


def test_state_round_trips_through_json() -> None:
    cfg = make_cfg({"schedule": "0 3 * * *", "feature_drift": {"enabled": True}})
    state = with_ref(0.86, segments={"region=south": 0.8}, estimated=0.9)
    state = record_retrain(state, T0, 2.5, score=0.7, triggers=cfg.triggers)
    out = evaluate(cfg, summary(performance=0.6, drift_share=0.9), state, T0 + 2 * HOUR)
    restored = TriggerState.from_dict(json.loads(json.dumps(out.new_state.to_dict())))
    assert restored == out.new_state
    assert TriggerState.from_dict(None) == TriggerState()
    with pytest.raises(StoreError, match="trigger state is malformed.*delete it"):
        TriggerState.from_dict({"retrains": [["not a time", 1.0]]})


def test_summary_from_a_report_dict() -> None:
    s = MonitoringSummary.from_dict({
        "n_predictions": 900, "n_labelled": 300, "metric": "accuracy", "window_end": "2024-01-01T00:00:00+00:00",
        "performance": 0.8, "drift_share": 0.1, "segment_performance": {"region=n": {"value": 0.7, "n": 100}},
    })
    assert s.window_end == T0 and s.segment_performance["region=n"] == {"value": 0.7, "n": 100}
    with pytest.raises(DataError, match="no 'metric'"):
        MonitoringSummary.from_dict({"n_predictions": 1, "window_end": T0})


def test_events_cover_every_decision_that_is_not_quiet() -> None:
    cfg = make_cfg({"feature_drift": {"enabled": True}})
    out = evaluate(cfg, summary(performance=0.70, drift_share=0.9), with_ref(0.793), T0 + HOUR)
    kinds = {e["subject"]: e["kind"] for e in out.events()}
    assert kinds == {"performance_drop": "trigger_fired", "feature_drift": "trigger_fired"}
    assert all(e["reason"] and "threshold" in e["numbers"] for e in out.events())
    assert json.loads(json.dumps(out.events()))[0]["numbers"]["window_end"] == T0.isoformat()


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        evaluate(make_cfg(), summary(metric="auc"), TriggerState(), T0)
