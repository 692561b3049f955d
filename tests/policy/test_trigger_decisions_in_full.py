"""Every trigger's decision on a tick as the events record it: status, the whole reason
sentence and the whole ``numbers`` dict, with the outcome's reason and the state it stores.

Each scenario is one tick with every reader present, so a reader's wording, a key of its
numbers or a path through :func:`evaluate` that changes shows up in one comparison. The
figures are exact binary fractions (0.75, 0.625, 0.1875) so the sentences can be written out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelpilot.config import PilotConfig
from modelpilot.errors import ConfigError
from modelpilot.policy.trigger_state import ChangeState
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
DAY = T0 + timedelta(days=1)
NO_CHANGE = ("quiet", "no labelled errors of the champion to test")
NO_SCHEDULE = ("quiet", "no schedule (triggers.schedule)")
LABELLED = ("quiet", "labelled performance is available (800 labels); no estimate needed")
BUDGET = {"budget_retrains": 0, "budget_max_retrains": 10, "budget_spent": 0.0, "budget_projected_cost": 0.0,
          "budget_max_cost": None, "budget_period_seconds": None, "budget_period_rows": 50000}
ALL_ON = {"feature_drift": {"enabled": True}, "prediction_drift": {"enabled": True},
          "estimated_performance_drop": {"enabled": True}, "coverage_drop": {"enabled": True}}
NO_COVERAGE = ("quiet", "no conformal coverage in the window (no calibration, or no labels)")
# every reading of a window that measured nothing, the triggers enabled or not
NOTHING_MEASURED = {
    "schedule": NO_SCHEDULE, "change": NO_CHANGE,
    "performance_drop": ("quiet", "no labelled performance in the window"),
    "segment_performance_drop": ("quiet", "no segment performance in the window"),
    "estimated_performance_drop": ("quiet", "no performance estimate in the window"),
    "feature_drift": ("quiet", "no share of drifted features in the window"),
    "prediction_drift": ("quiet", "no prediction drift statistic in the window"),
    "coverage_drop": NO_COVERAGE,
}


def make_cfg(triggers: dict[str, Any], budget: dict[str, Any] | None = None) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}, "triggers": triggers,
                                  "budget": budget or {}})


def readings(out: TriggerOutcome) -> dict[str, tuple[str, str]]:
    return {d.name: (d.status, d.reason) for d in out.decisions}


def numbers(out: TriggerOutcome, name: str) -> dict[str, Any]:
    return next(d.numbers for d in out.decisions if d.name == name)


def test_a_tick_where_every_trigger_fires() -> None:
    cfg = make_cfg({"schedule": "0 3 * * *", **ALL_ON})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0,
                            segments={"region=n": 0.75, "region=s": 0.75}, estimated=0.75)
    s = MonitoringSummary(
        n_predictions=1000, n_labelled=800, metric="accuracy", window_end=DAY, performance=0.625,
        segment_performance={"region=n": {"value": 0.5, "n": 400}, "region=s": {"value": 0.625, "n": 400}},
        drift_share=0.75, drifted_features=["a", "b"], prediction_drift=0.25, estimated_performance=0.5,
        coverage={"coverage": 0.75, "target": 0.875, "p_value": 1e-9, "n": 800.0})
    out = evaluate(cfg, s, replace(state, schedule_anchor=T0), DAY)
    degrading = "; labelled accuracy is also degrading (0.1250 worse than the reference, >= 0.0250)"
    schedule = ("scheduled retrain: cron '0 3 * * *' ticked at 2024-01-01T03:00:00+00:00 (counting since "
                "2024-01-01T00:00:00+00:00)")
    performance = ("accuracy 0.6250 on 800 labelled predictions is 0.1250 below the reference 0.7500 (v1 validation; "
                   "threshold 0.05)")
    segment = ("accuracy in segment region=n 0.5000 on 400 labelled predictions is 0.2500 below its reference 0.7500 "
               "(threshold 0.08); also over the threshold: region=s 0.1250")
    feature = f"share of drifted features 0.7500 on 1000 predictions (threshold 0.5){degrading}"
    prediction = f"prediction drift statistic 0.2500 on 1000 predictions (threshold 0.2){degrading}"
    coverage = ("conformal coverage 0.7500 on 800 labelled predictions against the promised 0.8750 (shortfall "
                "+0.1250, threshold 0.05; binomial p=1e-09)")
    assert readings(out) == {
        "schedule": ("fired", schedule), "change": NO_CHANGE, "performance_drop": ("fired", performance),
        "segment_performance_drop": ("fired", segment), "estimated_performance_drop": LABELLED,
        "feature_drift": ("fired", feature), "prediction_drift": ("fired", prediction),
        "coverage_drop": ("fired", coverage),
    }
    assert out.retrain is True and out.reason == "; ".join([schedule, performance, segment, feature, prediction,
                                                            coverage])
    window = {"window_end": "2024-01-02T00:00:00+00:00"}
    rows_cooldown = {"cooldown_seconds": None, "cooldown_rows": 1000, **window}
    assert numbers(out, "schedule") == {
        "schedule": "0 3 * * *", "tick": "2024-01-01T03:00:00+00:00", "since": "2024-01-01T00:00:00+00:00",
        "value": None, "threshold": None, "cooldown_seconds": 0.0, "cooldown_rows": None, **window, **BUDGET}
    assert numbers(out, "change") == {"value": None, "threshold": None, "cooldown_seconds": 0.0,
                                      "cooldown_rows": None, **window}
    assert numbers(out, "performance_drop") == {
        "metric": "accuracy", "performance": 0.625, "n_labelled": 800, "min_samples": 200, "reference": 0.75,
        "reference_how": "v1 validation", "drop": 0.125, "relative": False, "n": 800, "value": 0.125,
        "threshold": 0.05, **rows_cooldown, **BUDGET}
    assert numbers(out, "segment_performance_drop") == {
        "metric": "accuracy", "min_samples": 200, "segment": "region=n", "n": 400, "value": 0.25, "threshold": 0.08,
        "segments": {"region=n": {"value": 0.5, "n": 400, "reference": 0.75, "drop": 0.25},
                     "region=s": {"value": 0.625, "n": 400, "reference": 0.75, "drop": 0.125}},
        **rows_cooldown, **BUDGET}
    assert numbers(out, "estimated_performance_drop") == {"value": None, "threshold": None, **rows_cooldown}
    assert numbers(out, "feature_drift") == {
        "drifted_features": ["a", "b"], "drift_share": 0.75, "n_predictions": 1000, "n": 1000, "min_samples": 200,
        "performance_drop": 0.125, "degrading_bar": 0.025, "value": 0.75, "threshold": 0.5, **rows_cooldown, **BUDGET}
    assert numbers(out, "prediction_drift") == {
        "n_predictions": 1000, "n": 1000, "min_samples": 200, "performance_drop": 0.125, "degrading_bar": 0.025,
        "value": 0.25, "threshold": 0.2, **rows_cooldown, **BUDGET}
    assert numbers(out, "coverage_drop") == {
        "coverage": 0.75, "target": 0.875, "p_value": 1e-9, "shortfall": 0.125, "alpha": 0.01, "n": 800,
        "min_samples": 200, "value": 0.125, "threshold": 0.05, **rows_cooldown, **BUDGET}
    fired = {name: DAY for name in ("schedule", "performance_drop", "segment_performance_drop", "feature_drift",
                                    "prediction_drift", "coverage_drop")}
    assert out.new_state == replace(state, last_fired=fired, schedule_anchor=DAY)


def test_the_first_window_sets_the_references_it_can() -> None:
    cfg = make_cfg({"schedule": "0 3 * * *", **ALL_ON})
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.625,
                          segment_performance={"region=n": {"value": 0.5, "n": 400}, "region=s": {"value": 0.625, "n": 100}},
                          drift_share=0.25, prediction_drift=0.125)
    out = evaluate(cfg, s, TriggerState(), T0)
    assert readings(out) == {
        "schedule": ("quiet", "schedule '0 3 * * *' starts counting now"), "change": NO_CHANGE,
        "performance_drop": ("quiet", "reference set to accuracy 0.6250 from the first labelled window (800 predictions)"),
        "segment_performance_drop": ("quiet", "segment references are being set from this window"),
        "estimated_performance_drop": LABELLED,
        "feature_drift": ("quiet", "share of drifted features 0.2500 on 1000 predictions (threshold 0.5)"),
        "prediction_drift": ("quiet", "prediction drift statistic 0.1250 on 1000 predictions (threshold 0.2)"),
        "coverage_drop": NO_COVERAGE,
    }
    assert (out.retrain, out.reason) == (False, "no trigger fired")
    # the private keys that carried the new references are not recorded
    assert numbers(out, "performance_drop") == {
        "metric": "accuracy", "performance": 0.625, "n_labelled": 800, "min_samples": 200, "drop": 0.0,
        "value": None, "threshold": None, "cooldown_seconds": None, "cooldown_rows": 1000,
        "window_end": "2024-01-01T00:00:00+00:00"}
    assert "_set_segments" not in numbers(out, "segment_performance_drop")
    # a segment with fewer than min_samples rows gets no reference yet
    assert out.new_state == TriggerState(
        metric="accuracy", reference=Reference(0.625, "first labelled window (800 predictions)", T0),
        segment_references={"region=n": Reference(0.5, "first window with 400 labelled rows", T0)},
        schedule_anchor=T0)


def test_a_first_estimate_sets_its_baseline_while_labels_are_missing() -> None:
    cfg = make_cfg(ALL_ON)
    s = MonitoringSummary(n_predictions=200, n_labelled=0, metric="accuracy", window_end=T0, estimated_performance=0.5)
    out = evaluate(cfg, s, TriggerState(), T0)
    assert readings(out)["estimated_performance_drop"] == ("quiet", "estimate baseline set to 0.5000")
    assert out.new_state.estimated_reference == Reference(0.5, "first estimate (200 predictions)", T0)
    few = evaluate(cfg, replace(s, n_predictions=199), TriggerState(), T0)
    assert readings(few)["estimated_performance_drop"] == ("quiet", "no estimate baseline yet")
    assert few.new_state.estimated_reference is None
    assert numbers(few, "estimated_performance_drop")["n_predictions"] == 199


def test_a_window_with_nothing_measured() -> None:
    s = MonitoringSummary(n_predictions=100, n_labelled=0, metric="accuracy", window_end=T0)
    out = evaluate(make_cfg(ALL_ON), s, TriggerState(), T0)
    assert readings(out) == NOTHING_MEASURED
    few = evaluate(make_cfg({}), replace(s, performance=0.5, n_labelled=150), TriggerState(), T0)
    assert readings(few)["performance_drop"] == ("quiet", "no reference yet and only 150 labelled predictions")


def test_too_few_samples_are_not_acted_on_and_the_next_tick_is_announced() -> None:
    cfg = make_cfg({"schedule": "0 3 * * *", **ALL_ON})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0, estimated=0.75)
    s = MonitoringSummary(n_predictions=150, n_labelled=10, metric="accuracy", window_end=T0, performance=0.5,
                          estimated_performance=0.5, drift_share=0.75, prediction_drift=0.5)
    out = evaluate(cfg, s, replace(state, schedule_anchor=T0), T0 + timedelta(hours=1))
    assert readings(out) == {
        "schedule": ("quiet", "next scheduled tick at 2024-01-01T03:00:00+00:00"), "change": NO_CHANGE,
        "performance_drop": ("insufficient_samples", "accuracy 0.5000 on 10 labelled predictions is 0.2500 below the "
                             "reference 0.7500 (v1 validation; threshold 0.05); not acted on: only 10 samples, "
                             "min_samples is 200"),
        "segment_performance_drop": ("quiet", "no segment performance in the window"),
        "estimated_performance_drop": ("insufficient_samples", "estimated accuracy 0.5000 on 150 unlabelled "
                                       "predictions is 0.2500 below its baseline 0.7500 (threshold 0.08); not acted "
                                       "on: only 150 samples, min_samples is 200"),
        "feature_drift": ("insufficient_samples", "share of drifted features 0.7500 on 150 predictions (threshold "
                          "0.5); not acted on: only 150 samples, min_samples is 200"),
        "prediction_drift": ("insufficient_samples", "prediction drift statistic 0.5000 on 150 predictions (threshold "
                             "0.2); not acted on: only 150 samples, min_samples is 200"),
        "coverage_drop": NO_COVERAGE,
    }
    assert numbers(out, "schedule") == {
        "schedule": "0 3 * * *", "tick": "2024-01-01T03:00:00+00:00", "since": "2024-01-01T00:00:00+00:00",
        "value": None, "threshold": None, "cooldown_seconds": 0.0, "cooldown_rows": None,
        "window_end": "2024-01-01T00:00:00+00:00"}
    assert (out.retrain, out.reason) == (False, "no trigger fired")
    assert out.new_state.schedule_anchor == T0


def test_without_labels_the_estimate_segments_and_drift_decide() -> None:
    cfg = make_cfg({**ALL_ON, "segment_performance_drop": {"min_samples": 300}})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0, estimated=0.75,
                            segments={"a=1": 0.75, "a=2": 0.75, "a=3": 0.75})
    s = MonitoringSummary(n_predictions=1000, n_labelled=10, metric="accuracy", window_end=T0, performance=0.5,
                          estimated_performance=0.5, drift_share=0.75,
                          segment_performance={"a=1": {"value": 0.5, "n": 100}, "a=2": {"value": 0.625, "n": 400},
                                               "a=3": {"value": 0.5625, "n": 350}})
    out = evaluate(cfg, s, state, T0)
    got = readings(out)
    # the worst segment with enough rows; a=1 is worse but has too few rows to be named among the others
    assert got["segment_performance_drop"] == (
        "fired", "accuracy in segment a=3 0.5625 on 350 labelled predictions is 0.1875 below its reference 0.7500 "
                 "(threshold 0.08); also over the threshold: a=2 0.1250")
    assert got["estimated_performance_drop"] == (
        "fired", "estimated accuracy 0.5000 on 1000 unlabelled predictions is 0.2500 below its baseline 0.7500 "
                 "(threshold 0.08)")
    assert got["feature_drift"] == ("fired", "share of drifted features 0.7500 on 1000 predictions (threshold 0.5); "
                                             "labelled performance unavailable (10 labels), so drift decides")
    assert numbers(out, "estimated_performance_drop") == {
        "metric": "accuracy", "estimated": 0.5, "n_predictions": 1000, "min_samples": 200, "reference": 0.75,
        "drop": 0.25, "n": 1000, "value": 0.25, "threshold": 0.08, "cooldown_seconds": None, "cooldown_rows": 1000,
        "window_end": "2024-01-01T00:00:00+00:00", **BUDGET}
    assert numbers(out, "segment_performance_drop")["segment"] == "a=3"
    # only the segment with too few rows is over the threshold: it is named, and not acted on
    alone = replace(s, performance=None, estimated_performance=None, drift_share=None,
                    segment_performance={"a=1": {"value": 0.5, "n": 100}, "a=2": {"value": 0.75, "n": 400}})
    assert readings(evaluate(cfg, alone, state, T0))["segment_performance_drop"] == (
        "insufficient_samples", "accuracy in segment a=1 0.5000 on 100 labelled predictions is 0.2500 below its "
                                "reference 0.7500 (threshold 0.08); not acted on: only 100 samples, min_samples is 300")


def test_an_error_metric_reads_its_drop_in_percent_of_the_reference() -> None:
    state = reset_reference(TriggerState(), 2.0, "v1 validation", metric="rmse", now=T0)
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="rmse", window_end=T0, performance=2.25)
    out = evaluate(make_cfg({}), s, state, T0)
    reason = ("rmse 2.2500 on 800 labelled predictions is 12.5 % above the reference 2.0000 (v1 validation; threshold "
              "0.05 = 5.0 % of the reference)")
    assert readings(out)["performance_drop"] == ("fired", reason) and out.reason == reason
    assert numbers(out, "performance_drop")["relative"] is True and numbers(out, "performance_drop")["drop"] == 0.125
    better = evaluate(make_cfg({}), replace(s, performance=1.5), state, T0)
    assert readings(better)["performance_drop"][1].startswith(
        "rmse 1.5000 on 800 labelled predictions is 25.0 % below the reference 2.0000")
    # a zero reference has no percentage: the difference is given in the metric's units
    zero = reset_reference(TriggerState(), 0.0, "v1 validation", metric="rmse", now=T0)
    assert "is 2.2500 above the reference 0.0000" in readings(evaluate(make_cfg({}), s, zero, T0))["performance_drop"][1]


def test_a_refusal_by_the_budget_and_a_disabled_trigger() -> None:
    state = record_retrain(reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0), T0, 1.5)
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.5,
                          drift_share=0.75)
    out = evaluate(make_cfg({"feature_drift": {"enabled": False}}, {"max_retrains": 1}), s, state,
                   T0 + timedelta(hours=1))
    budget = "budget: 1 retrains in the last 50000 labelled rows reached budget.max_retrains 1"
    got = readings(out)
    assert got["performance_drop"] == (
        "suppressed_budget", "accuracy 0.5000 on 800 labelled predictions is 0.2500 below the reference 0.7500 "
                             f"(v1 validation; threshold 0.05); suppressed by the {budget}")
    assert got["feature_drift"] == (
        "quiet", "disabled (triggers.feature_drift.enabled); share of drifted features 0.7500 on 1000 predictions "
                 "(threshold 0.5); labelled accuracy is also degrading (0.2500 worse than the reference, >= 0.0250)")
    assert (out.retrain, out.reason) == (False, f"retrain refused by the {budget}")
    assert {k: v for k, v in numbers(out, "performance_drop").items() if k.startswith("budget_")} == {
        **BUDGET, "budget_retrains": 1, "budget_max_retrains": 1, "budget_spent": 1.5, "budget_projected_cost": 3.0}
    assert out.new_state.last_fired == {}


def test_every_firing_trigger_in_its_cooldown() -> None:
    state = replace(reset_reference(TriggerState(), 0.75, "v1", metric="accuracy", now=T0),
                    last_fired={"performance_drop": T0})
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.5)
    out = evaluate(make_cfg({"performance_drop": {"cooldown": "1h"}}), s, state, T0 + timedelta(minutes=30))
    assert readings(out)["performance_drop"] == (
        "suppressed_cooldown", "accuracy 0.5000 on 800 labelled predictions is 0.2500 below the reference 0.7500 "
                               "(v1; threshold 0.05); suppressed by cooldown: fired 30 min ago, cooldown 60 min, next "
                               "possible at 2024-01-01T01:00:00+00:00")
    assert (out.retrain, out.reason) == (False, "every firing trigger is in its cooldown")
    assert numbers(out, "performance_drop")["cooldown_seconds"] == 3600.0
    assert numbers(out, "performance_drop")["cooldown_rows"] is None
    assert out.new_state.last_fired == {"performance_drop": T0}


def test_a_disabled_trigger_with_nothing_to_read_keeps_its_own_reason() -> None:
    off = {name: {"enabled": False} for name in ("performance_drop", "segment_performance_drop",
                                                 "estimated_performance_drop", "feature_drift", "prediction_drift",
                                                 "coverage_drop")}
    empty = MonitoringSummary(n_predictions=100, n_labelled=0, metric="accuracy", window_end=T0)
    assert readings(evaluate(make_cfg(off), empty, TriggerState(), T0)) == NOTHING_MEASURED
    # references being set, or not yet: still nothing to disable
    first = MonitoringSummary(n_predictions=150, n_labelled=150, metric="accuracy", window_end=T0, performance=0.5,
                              segment_performance={"a=1": {"value": 0.5, "n": 400}}, estimated_performance=0.5)
    got = readings(evaluate(make_cfg(off), first, TriggerState(), T0))
    assert got["performance_drop"] == ("quiet", "no reference yet and only 150 labelled predictions")
    assert got["segment_performance_drop"] == ("quiet", "segment references are being set from this window")
    assert got["estimated_performance_drop"] == ("quiet", "no estimate baseline yet")
    enough = readings(evaluate(make_cfg(off), replace(first, n_labelled=200, n_predictions=200), TriggerState(), T0))
    assert enough["performance_drop"] == ("quiet", "reference set to accuracy 0.5000 from the first labelled window "
                                                   "(200 predictions)")
    assert enough["estimated_performance_drop"] == ("quiet", "labelled performance is available (200 labels); no "
                                                             "estimate needed")
    baseline = readings(evaluate(make_cfg(off), replace(first, performance=None, n_predictions=200), TriggerState(), T0))
    assert baseline["estimated_performance_drop"] == ("quiet", "estimate baseline set to 0.5000")


def test_a_reference_is_set_from_a_first_window_of_exactly_min_samples() -> None:
    s = MonitoringSummary(n_predictions=1000, n_labelled=200, metric="accuracy", window_end=T0, performance=0.5)
    assert evaluate(make_cfg({}), s, TriggerState(), T0).new_state.reference == Reference(
        0.5, "first labelled window (200 predictions)", T0)
    few = evaluate(make_cfg({}), replace(s, n_labelled=199), TriggerState(), T0)
    assert few.new_state.reference is None
    assert numbers(few, "performance_drop") == {
        "metric": "accuracy", "performance": 0.5, "n_labelled": 199, "min_samples": 200, "value": None,
        "threshold": None, "cooldown_seconds": None, "cooldown_rows": 1000, "window_end": "2024-01-01T00:00:00+00:00"}


def test_an_insufficient_reading_keeps_its_value_threshold_and_numbers() -> None:
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0)
    s = MonitoringSummary(n_predictions=1000, n_labelled=10, metric="accuracy", window_end=T0, performance=0.5)
    d = next(d for d in evaluate(make_cfg({}), s, state, T0).decisions if d.name == "performance_drop")
    assert (d.status, d.value, d.threshold) == ("insufficient_samples", 0.25, 0.05)
    assert d.numbers == {
        "metric": "accuracy", "performance": 0.5, "n_labelled": 10, "min_samples": 200, "reference": 0.75,
        "reference_how": "v1 validation", "drop": 0.25, "relative": False, "n": 10, "value": 0.25, "threshold": 0.05,
        "cooldown_seconds": None, "cooldown_rows": 1000, "window_end": "2024-01-01T00:00:00+00:00"}
    quiet = next(d for d in evaluate(make_cfg({}), replace(s, performance=0.75, n_labelled=800), state, T0).decisions
                 if d.name == "performance_drop")
    assert (quiet.status, quiet.value, quiet.threshold, quiet.numbers["n"]) == ("quiet", 0.0, 0.05, 800)


def test_a_schedule_fires_at_the_exact_tick_and_names_a_bad_expression() -> None:
    cfg = make_cfg({"schedule": "0 3 * * *"})
    state = TriggerState(schedule_anchor=T0)
    s = MonitoringSummary(n_predictions=1, n_labelled=0, metric="accuracy", window_end=T0)
    assert readings(evaluate(cfg, s, state, T0 + timedelta(hours=3)))["schedule"][0] == "fired"
    assert readings(evaluate(cfg, s, state, T0 + timedelta(hours=3) - timedelta(seconds=1)))["schedule"][0] == "quiet"
    # the config refuses such an expression when it is read; one written into the settings later is caught here
    bad = cfg.model_copy(update={"triggers": cfg.triggers.model_copy(update={"schedule": "0 3 * *"})})
    with pytest.raises(ConfigError) as raised:
        evaluate(bad, s, state, T0)
    assert str(raised.value).startswith("triggers.schedule '0 3 * *' cannot be read (")
    assert str(raised.value).endswith("): write a cron expression such as '0 3 * * 0'")


def test_feature_drift_records_at_most_fifty_drifted_features() -> None:
    features = [f"x{i}" for i in range(60)]
    s = MonitoringSummary(n_predictions=1000, n_labelled=0, metric="accuracy", window_end=T0, drift_share=0.75,
                          drifted_features=features)
    out = evaluate(make_cfg({"feature_drift": {"enabled": True}}), s, TriggerState(), T0)
    assert numbers(out, "feature_drift")["drifted_features"] == features[:50]


def test_segments_at_exactly_min_samples_and_threshold_count() -> None:
    cfg = make_cfg({"segment_performance_drop": {"min_samples": 300, "threshold": 0.125}})
    state = reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0,
                            segments={"a=2": 0.75, "a=3": 0.75, "a=4": 0.75})
    segs = {"a=1": {"value": 0.5, "n": 300},  # no reference yet: set from exactly min_samples rows
            "a=2": {"value": 0.5, "n": 300}, "a=3": {"value": 0.625, "n": 400}, "a=4": {"value": 0.5625, "n": 400}}
    s = MonitoringSummary(n_predictions=1000, n_labelled=0, metric="accuracy", window_end=T0, segment_performance=segs)
    out = evaluate(cfg, s, state, T0)
    # a=2 has exactly min_samples rows; a=3 is exactly the threshold below its reference
    assert readings(out)["segment_performance_drop"] == (
        "fired", "accuracy in segment a=2 0.5000 on 300 labelled predictions is 0.2500 below its reference 0.7500 "
                 "(threshold 0.125); also over the threshold: a=4 0.1875, a=3 0.1250")
    assert out.new_state.segment_references["a=1"] == Reference(0.5, "first window with 300 labelled rows", T0)


def test_the_budget_projects_the_last_recorded_cost_even_when_its_retrain_has_left_the_period() -> None:
    state = record_retrain(reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0), T0, 1.5)
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.5)
    out = evaluate(make_cfg({}, {"max_retrains": None, "max_cost": 1.0, "period": "1d"}), s, state,
                   T0 + timedelta(days=2))
    assert out.retrain is False and out.new_state.retrains == []
    assert numbers(out, "performance_drop")["budget_projected_cost"] == 1.5


def test_a_retrain_on_a_degraded_post_change_champion_moves_the_change() -> None:
    took_over = T0 - timedelta(hours=2)
    state = replace(reset_reference(TriggerState(), 0.75, "v2 holdout", metric="accuracy", now=T0),
                    change=ChangeState(since=T0 - timedelta(days=3), found_at=T0 - timedelta(days=2), version=1,
                                       trained_rows=4000))
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.5,
                          change={"detected": False, "statistic": 0.5, "threshold": 3.6, "version": 2,
                                  "champion_since": took_over.isoformat(), "rows_since_known": 100})
    out = evaluate(make_cfg({}), s, state, T0)
    assert out.retrain is True
    assert out.new_state.change == ChangeState(since=took_over, found_at=T0, version=2)


def test_an_already_reported_watch_keeps_its_numbers() -> None:
    cfg = make_cfg({"feature_drift": {"enabled": True, "cooldown": "1h"}})
    state = replace(reset_reference(TriggerState(), 0.75, "v1 validation", metric="accuracy", now=T0),
                    last_watch={"feature_drift": T0})
    s = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=T0, performance=0.75,
                          drift_share=0.75)
    out = evaluate(cfg, s, state, T0 + timedelta(minutes=1))
    assert readings(out)["feature_drift"][0] == "quiet"
    assert numbers(out, "feature_drift")["value"] == 0.75 and numbers(out, "feature_drift")["cooldown_seconds"] == 3600
