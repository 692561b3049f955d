"""Every documented policy boundary, tested on both sides.

Each test reads the exact value a rule compares (from the decision or check it reports),
then sets the limit to exactly that value and to a hair beyond it: a flipped comparison
(``<`` for ``<=``, ``>`` for ``>=``) or an off-by-one sample count changes one of the two
verdicts. Limits are taken from the reported numbers rather than written as literals, so
the tests hold whatever arithmetic produced the value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from modelpilot.config import BudgetConfig, GatesConfig, PilotConfig
from modelpilot.errors import DataError
from modelpilot.policy.budget import check_budget, in_period
from modelpilot.policy.compare import compare_to_champion
from modelpilot.policy.gates import threshold_gate
from modelpilot.policy.triggers import (
    MonitoringSummary,
    TriggerOutcome,
    TriggerState,
    evaluate,
    record_retrain,
    reset_reference,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
EPS = 1e-9


def cfg_with(triggers: dict[str, Any] | None = None, budget: dict[str, Any] | None = None,
             gates: dict[str, Any] | None = None) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}, "triggers": triggers or {},
                                  "budget": budget or {"max_retrains": None}, "gates": gates or {}})


def summary(**kw: Any) -> MonitoringSummary:
    base: dict[str, Any] = {"n_predictions": 1000, "n_labelled": 800, "metric": "accuracy", "window_end": T0,
                            "performance": 0.75}
    return MonitoringSummary(**{**base, **kw})


def ref(value: float = 0.85, **kw: Any) -> TriggerState:
    return reset_reference(TriggerState(), value, "v1 validation", metric="accuracy", now=T0, **kw)


def status(out: TriggerOutcome, name: str) -> str:
    return next(d.status for d in out.decisions if d.name == name)


def value(out: TriggerOutcome, name: str) -> float:
    v = next(d.value for d in out.decisions if d.name == name)
    assert v is not None
    return float(v)


# --------------------------------------------------------------------------- trigger thresholds


def test_performance_drop_fires_at_the_threshold_and_not_below_it() -> None:
    probe = evaluate(cfg_with(), summary(performance=0.80), ref(0.85), T0)
    drop = value(probe, "performance_drop")
    at = evaluate(cfg_with({"performance_drop": {"threshold": drop}}), summary(performance=0.80), ref(0.85), T0)
    assert status(at, "performance_drop") == "fired" and at.retrain
    above = evaluate(cfg_with({"performance_drop": {"threshold": drop + EPS}}), summary(performance=0.80), ref(0.85), T0)
    assert status(above, "performance_drop") == "quiet" and not above.retrain


def test_lower_is_better_metric_boundary_points_upwards() -> None:
    state = reset_reference(TriggerState(), 2.0, "v1", metric="rmse", now=T0)
    s = summary(metric="rmse", performance=2.5)
    drop = value(evaluate(cfg_with(), s, state, T0), "performance_drop")
    assert drop == pytest.approx(0.25)  # error metrics: a fraction of the reference
    assert status(evaluate(cfg_with({"performance_drop": {"threshold": drop}}), s, state, T0), "performance_drop") == "fired"
    assert status(evaluate(cfg_with({"performance_drop": {"threshold": drop + EPS}}), s, state, T0),
                  "performance_drop") == "quiet"
    better = summary(metric="rmse", performance=1.5)  # rmse fell: no drop at any threshold
    assert status(evaluate(cfg_with({"performance_drop": {"threshold": 0.0}}), better, state, T0), "performance_drop") == "quiet"


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_error_metric_drops_are_relative_on_both_sides_of_the_threshold(scale: float) -> None:
    """An rmse 5 % over its reference fires at 0.05 and 4.99 % does not, whatever the target's units."""
    state = reset_reference(TriggerState(), 20.0 * scale, "v1", metric="rmse", now=T0,
                            segments={"region=north": 10.0 * scale})
    cfg = cfg_with({"performance_drop": {"threshold": 0.05}, "segment_performance_drop": {"threshold": 0.05}})
    seg = {"region=north": {"value": 10.5 * scale, "n": 500}}
    at = evaluate(cfg, summary(metric="rmse", performance=21.0 * scale, segment_performance=seg), state, T0)
    assert status(at, "performance_drop") == "fired" and status(at, "segment_performance_drop") == "fired"
    assert value(at, "performance_drop") == pytest.approx(0.05)
    seg_under = {"region=north": {"value": 10.499 * scale, "n": 500}}
    under = evaluate(cfg, summary(metric="rmse", performance=20.998 * scale, segment_performance=seg_under), state, T0)
    assert status(under, "performance_drop") == "quiet" and status(under, "segment_performance_drop") == "quiet"
    # bounded scores stay in points: 0.05 below an accuracy of 0.85, not 5 % of it
    for acc, fires in ((0.79, True), (0.805, False)):  # 0.045 below, though 5.3 % of 0.85
        points = evaluate(cfg_with({"performance_drop": {"threshold": 0.05}}), summary(performance=acc), ref(0.85), T0)
        assert value(points, "performance_drop") == pytest.approx(0.85 - acc)
        assert status(points, "performance_drop") == ("fired" if fires else "quiet")


def test_an_error_metric_shortfall_is_relative_to_the_reference() -> None:
    triggers = cfg_with({"performance_drop": {"threshold": 0.1}, "reference_accept_after": 1}).triggers
    state = reset_reference(TriggerState(), 1000.0, "v1", metric="rmse", now=T0)
    on_bar = record_retrain(state, T0, 1.0, score=1100.0, triggers=triggers)  # exactly 10 % worse
    assert on_bar.reference is not None and on_bar.reference.value == 1000.0 and on_bar.reference.shortfalls == 0
    short = record_retrain(state, T0, 1.0, score=1100.0 + 1e-6, triggers=triggers)
    assert short.reference is not None and short.reference.value == pytest.approx(1100.0)  # lowered at once


@pytest.mark.parametrize("rule", ["performance_drop", "segment_performance_drop"])
def test_min_samples_acts_at_the_minimum_and_not_one_below(rule: str) -> None:
    seg = {"region=north": {"value": 0.6, "n": 150}}
    state = ref(0.85, segments={"region=north": 0.85})
    cfg = cfg_with({rule: {"threshold": 0.05, "min_samples": 150}})
    at = evaluate(cfg, summary(n_labelled=150, performance=0.6, segment_performance=seg), state, T0)
    assert status(at, rule) == "fired"
    seg_below = {"region=north": {"value": 0.6, "n": 149}}
    below = evaluate(cfg, summary(n_labelled=149, performance=0.6, segment_performance=seg_below), state, T0)
    assert status(below, rule) == "insufficient_samples"


def test_segment_drop_fires_at_its_threshold_and_not_below_it() -> None:
    seg = {"region=north": {"value": 0.70, "n": 500}, "region=south": {"value": 0.85, "n": 500}}
    state = ref(0.85, segments={"region=north": 0.85, "region=south": 0.85})
    s = summary(performance=0.84, segment_performance=seg)
    drop = value(evaluate(cfg_with(), s, state, T0), "segment_performance_drop")
    assert drop == pytest.approx(0.15)
    at = evaluate(cfg_with({"segment_performance_drop": {"threshold": drop}}), s, state, T0)
    assert status(at, "segment_performance_drop") == "fired"
    assert next(d for d in at.decisions if d.name == "segment_performance_drop").numbers["segment"] == "region=north"
    above = evaluate(cfg_with({"segment_performance_drop": {"threshold": drop + EPS}}), s, state, T0)
    assert status(above, "segment_performance_drop") == "quiet"


@pytest.mark.parametrize(("rule", "field", "reading"), [
    ("feature_drift", "drift_share", 0.4), ("prediction_drift", "prediction_drift", 0.3),
])
def test_drift_fires_at_its_threshold_and_not_below_it(rule: str, field: str, reading: float) -> None:
    s = summary(performance=None, n_labelled=0, **{field: reading})
    at = evaluate(cfg_with({rule: {"threshold": reading}}), s, TriggerState(), T0)
    assert status(at, rule) == "fired"
    above = evaluate(cfg_with({rule: {"threshold": reading + EPS}}), s, TriggerState(), T0)
    assert status(above, rule) == "quiet"


def test_drift_fires_with_performance_degrading_at_half_the_drop_threshold() -> None:
    """drift_requires_performance: drift retrains once labelled performance lost >= half the threshold."""
    probe = evaluate(cfg_with(), summary(performance=0.82, drift_share=0.9), ref(0.85), T0)
    drop = value(probe, "performance_drop")
    at = cfg_with({"performance_drop": {"threshold": 2 * drop}, "feature_drift": {"threshold": 0.5}})
    assert status(evaluate(at, summary(performance=0.82, drift_share=0.9), ref(0.85), T0), "feature_drift") == "fired"
    beyond = cfg_with({"performance_drop": {"threshold": 2 * drop + 4 * EPS}, "feature_drift": {"threshold": 0.5}})
    assert status(evaluate(beyond, summary(performance=0.82, drift_share=0.9), ref(0.85), T0), "feature_drift") == "watch"


def test_drift_decides_alone_when_labels_are_one_short_of_the_minimum() -> None:
    cfg = cfg_with({"performance_drop": {"threshold": 0.05, "min_samples": 200}, "feature_drift": {"threshold": 0.5}})
    few = summary(performance=0.85, n_labelled=199, drift_share=0.9)
    assert status(evaluate(cfg, few, ref(0.85), T0), "feature_drift") == "fired"
    enough = summary(performance=0.85, n_labelled=200, drift_share=0.9)
    assert status(evaluate(cfg, enough, ref(0.85), T0), "feature_drift") == "watch"


def test_the_estimate_is_used_only_while_labels_are_below_the_minimum() -> None:
    cfg = cfg_with({"performance_drop": {"min_samples": 200}, "estimated_performance_drop": {"threshold": 0.05}})
    state = reset_reference(TriggerState(), 0.85, "v1", metric="accuracy", now=T0, estimated=0.85)
    no_labels = summary(performance=0.85, n_labelled=199, estimated_performance=0.70)
    assert status(evaluate(cfg, no_labels, state, T0), "estimated_performance_drop") == "fired"
    labels = summary(performance=0.85, n_labelled=200, estimated_performance=0.70)
    out = evaluate(cfg, labels, state, T0)
    assert status(out, "estimated_performance_drop") == "quiet" and not out.retrain


# --------------------------------------------------------------------------- cooldowns


@pytest.mark.parametrize("rule", ["performance_drop", "feature_drift"])
def test_cooldown_holds_until_exactly_its_end(rule: str) -> None:
    cfg = cfg_with({rule: {"threshold": 0.05, "cooldown": "1h"}, "drift_requires_performance": False})
    s = summary(performance=0.70, drift_share=0.9)
    first = evaluate(cfg, s, ref(0.85), T0)
    assert status(first, rule) == "fired"
    just_before = evaluate(cfg, s, first.new_state, T0 + timedelta(seconds=3599))
    assert status(just_before, rule) == "suppressed_cooldown"
    at_end = evaluate(cfg, s, first.new_state, T0 + timedelta(seconds=3600))
    assert status(at_end, rule) == "fired"


def test_a_drift_watch_is_reported_once_per_cooldown() -> None:
    cfg = cfg_with({"feature_drift": {"threshold": 0.3, "cooldown": "1h"}})
    s = summary(performance=0.85, drift_share=0.9)
    first = evaluate(cfg, s, ref(0.85), T0)
    assert status(first, "feature_drift") == "watch"
    assert status(evaluate(cfg, s, first.new_state, T0 + timedelta(seconds=3599)), "feature_drift") == "quiet"
    assert status(evaluate(cfg, s, first.new_state, T0 + timedelta(seconds=3600)), "feature_drift") == "watch"


# --------------------------------------------------------------------------- budget


def test_budget_count_allows_one_below_the_cap_and_refuses_at_it() -> None:
    now = T0 + timedelta(days=1)
    spent = [(T0 + timedelta(hours=h), 1.0) for h in range(3)]
    assert check_budget(BudgetConfig(max_retrains=4), spent, now).allowed
    refused = check_budget(BudgetConfig(max_retrains=3), spent, now)
    assert not refused.allowed and "reached budget.max_retrains 3" in refused.reason
    assert check_budget(BudgetConfig(max_retrains=0), [], now).allowed is False


def test_budget_period_is_rolling_and_excludes_its_far_edge() -> None:
    period = 7 * 86400.0
    now = T0 + timedelta(days=30)
    edge = now - timedelta(seconds=period)
    assert in_period([(edge, 1.0)], now, period) == []
    inside = edge + timedelta(seconds=1)
    assert in_period([(inside, 1.0)], now, period) == [(inside, 1.0)]
    assert in_period([(now, 1.0)], now, period) == [(now, 1.0)]
    assert in_period([(now + timedelta(seconds=1), 1.0)], now, period) == []  # not yet happened
    cfg = BudgetConfig(max_retrains=1, period=period)
    assert check_budget(cfg, [(edge, 1.0)], now).allowed
    assert not check_budget(cfg, [(inside, 1.0)], now).allowed


def test_budget_cost_cap_allows_reaching_it_and_refuses_passing_it() -> None:
    now = T0 + timedelta(days=1)
    spent = [(T0, 2.0), (T0 + timedelta(hours=1), 3.0)]  # 5 spent; the next is projected at 3
    at = check_budget(BudgetConfig(max_retrains=None, max_cost=8.0), spent, now)
    assert at.allowed and at.projected_cost == 8.0
    over = check_budget(BudgetConfig(max_retrains=None, max_cost=8.0 - EPS), spent, now)
    assert not over.allowed and "would exceed budget.max_cost" in over.reason
    assert check_budget(BudgetConfig(max_retrains=None, max_cost=6.0), spent, now, next_cost=1.0).allowed
    assert not check_budget(BudgetConfig(max_retrains=None, max_cost=6.0), spent, now, next_cost=1.5).allowed
    # spending older than the period no longer counts
    assert check_budget(BudgetConfig(max_retrains=None, max_cost=3.0, period=3600), spent, now).allowed


def test_budget_counts_only_the_period_inside_evaluate() -> None:
    cfg = cfg_with(budget={"max_retrains": 1, "period": "1d"})
    state = record_retrain(ref(0.85), T0, 1.0)
    s = summary(performance=0.70)
    assert not evaluate(cfg, s, state, T0 + timedelta(seconds=86399)).retrain
    assert evaluate(cfg, s, state, T0 + timedelta(seconds=86400)).retrain


# --------------------------------------------------------------------------- reference shortfalls


def test_a_retrain_short_by_exactly_the_threshold_is_not_a_shortfall() -> None:
    triggers = cfg_with({"performance_drop": {"threshold": 0.25}, "reference_accept_after": 2}).triggers
    state = ref(0.75)
    on_bar = record_retrain(state, T0, 1.0, score=0.5, triggers=triggers)  # exactly 0.25 short
    assert on_bar.reference is not None and on_bar.reference.shortfalls == 0
    short = record_retrain(state, T0, 1.0, score=0.5 - EPS, triggers=triggers)
    assert short.reference is not None and short.reference.shortfalls == 1 and short.reference.value == 0.75
    lowered = record_retrain(short, T0 + timedelta(hours=1), 1.0, score=0.45, triggers=triggers)
    assert lowered.reference is not None and lowered.reference.value == pytest.approx(0.5)  # the best of the two


def test_a_promotion_equal_to_the_carried_reference_replaces_it() -> None:
    state = ref(0.80)
    same = reset_reference(state, 0.80, "v2 holdout", metric="accuracy", now=T0 + timedelta(days=1))
    assert same.reference is not None and same.reference.how == "v2 holdout" and same.reference.carried == 0
    lower = reset_reference(state, 0.80 - EPS, "v3 holdout", metric="accuracy", now=T0 + timedelta(days=1))
    assert lower.reference is not None and lower.reference.value == 0.80 and lower.reference.carried == 1


# --------------------------------------------------------------------------- the gates


def test_threshold_gate_floor_and_ceiling_include_the_limit() -> None:
    floor = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "gates": {"min_metrics": {"accuracy": 0.8}}})
    assert threshold_gate({"accuracy": 0.8}, {}, floor).passed
    assert not threshold_gate({"accuracy": 0.8 - EPS}, {}, floor).passed
    ceiling = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "gates": {"min_metrics": {"rmse": 2.0}}})
    assert threshold_gate({"rmse": 2.0}, {}, ceiling).passed
    assert not threshold_gate({"rmse": 2.0 + EPS}, {}, ceiling).passed


def classifier(n: int, wrong_old: int, wrong_new: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two predictions, wrong on disjoint rows (the first ``wrong_old``, the last ``wrong_new``)."""
    y = np.tile([0, 1], n // 2)
    old = y.copy()
    old[:wrong_old] = 1 - old[:wrong_old]
    new = y.copy()
    new[n - wrong_new:] = 1 - new[n - wrong_new:]
    return y, old, new


def test_the_improvement_must_exceed_the_margin_not_equal_it() -> None:
    y, old, new = classifier(1000, 200, 100)
    probe = compare_to_champion(y, old, new, task="classification", metric="accuracy", cfg=GatesConfig(test="none"))
    delta = probe.delta
    assert delta == pytest.approx(0.1) and probe.passed
    equal = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                cfg=GatesConfig(test="none", min_improvement=delta))
    assert not equal.passed and equal.checks[0]["name"] == "beats_champion"
    under = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                cfg=GatesConfig(test="none", min_improvement=delta - EPS))
    assert under.passed


def test_for_error_metrics_the_improvement_margin_is_a_fraction_of_the_champion() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(50_000.0, 10_000.0, 400)
    old = y + rng.normal(0.0, 2_000.0, 400)
    new = y + (old - y) * 0.97  # every error 3 % smaller: rmse 3 % lower
    kw: dict[str, Any] = {"task": "regression", "metric": "rmse"}
    probe = compare_to_champion(y, old, new, cfg=GatesConfig(test="none"), **kw)
    share = probe.delta / probe.champion_metric
    assert share == pytest.approx(0.03)
    at = compare_to_champion(y, old, new, cfg=GatesConfig(test="none", min_improvement=share), **kw)
    assert not at.passed and at.checks[0]["name"] == "beats_champion"
    assert at.details["margin"] == pytest.approx(probe.delta)  # in the metric's units: dollars
    under = compare_to_champion(y, old, new, cfg=GatesConfig(test="none", min_improvement=share - 1e-9), **kw)
    assert under.passed
    # an absolute reading of 0.01 would have let any improvement above one cent through
    assert not compare_to_champion(y, old, new, cfg=GatesConfig(test="none", min_improvement=0.05), **kw).passed


def test_significance_compares_the_p_value_strictly_below_alpha() -> None:
    y, old, new = classifier(200, 40, 30)
    probe = compare_to_champion(y, old, new, task="classification", metric="accuracy", cfg=GatesConfig(test="mcnemar"))
    p = probe.p_value
    assert p is not None and 0.05 < p < 1
    at = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                             cfg=GatesConfig(test="mcnemar", alpha=p))
    assert not at.passed and {c["name"]: c["passed"] for c in at.checks}["significance"] is False
    above = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                cfg=GatesConfig(test="mcnemar", alpha=min(p * (1 + 1e-6), 0.999)))
    assert above.passed


def test_segment_regression_tolerance_includes_its_limit() -> None:
    # the challenger is better overall but worse in the north (30 rows there)
    y, old, new = classifier(400, 120, 10)
    seg = np.array(["south"] * 370 + ["north"] * 30)
    new[370:390] = 1 - y[370:390]  # 20 more wrong in the north than the champion
    kw: dict[str, Any] = {"task": "classification", "metric": "accuracy", "segments": {"region": seg}}
    probe = compare_to_champion(y, old, new, cfg=GatesConfig(test="none"), **kw)
    check = next(c for c in probe.checks if c["name"] == "segment:region=north")
    worse = float(check["value"])
    assert worse > 0 and not check["passed"]
    at = compare_to_champion(y, old, new, cfg=GatesConfig(test="none", max_segment_regression=worse), **kw)
    assert next(c for c in at.checks if c["name"] == "segment:region=north")["passed"] and at.passed
    below = compare_to_champion(y, old, new, cfg=GatesConfig(test="none", max_segment_regression=worse - EPS), **kw)
    assert not below.passed and any("region=north" in r for r in below.reasons)


def test_segments_are_checked_from_thirty_rows_and_holdouts_compared_from_thirty() -> None:
    y, old, new = classifier(400, 120, 10)
    kw: dict[str, Any] = {"task": "classification", "metric": "accuracy", "cfg": GatesConfig(test="none")}
    for north, checked in ((30, True), (29, False)):
        seg = np.array(["south"] * (400 - north) + ["north"] * north)
        result = compare_to_champion(y, old, new, segments={"region": seg}, **kw)
        assert any(c["name"] == "segment:region=north" for c in result.checks) is checked
    compare_to_champion(y[:30], old[:30], new[:30], **kw)
    with pytest.raises(DataError, match="only 29 labelled holdout rows"):
        compare_to_champion(y[:29], old[:29], new[:29], **kw)


def test_the_bootstrap_interval_bounds_are_the_alpha_and_one_minus_alpha_quantiles() -> None:
    """By the test/interval duality: a margin at the lower bound has p ≈ alpha, at the upper 1 - alpha.

    ``p`` is the share of bootstrap improvements at or below the margin, computed from the
    same replicates (same seed); an interval built from other quantiles breaks this.
    """
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 600)
    old = np.where(rng.random(600) < 0.70, y, 1 - y)
    new = np.where(rng.random(600) < 0.88, y, 1 - y)
    n_boot = 4000
    for alpha in (0.05, 0.2):
        base = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                   cfg=GatesConfig(n_bootstrap=n_boot, alpha=alpha), seed=3)
        assert base.ci_low is not None and base.ci_high is not None
        assert base.ci_low < base.delta < base.ci_high
        at_low = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                     cfg=GatesConfig(n_bootstrap=n_boot, alpha=alpha, min_improvement=base.ci_low), seed=3)
        at_high = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                      cfg=GatesConfig(n_bootstrap=n_boot, alpha=alpha, min_improvement=base.ci_high), seed=3)
        # accuracy differences are discrete: ties at the quantile add up to a few percent
        assert at_low.p_value is not None and alpha - 0.005 <= at_low.p_value <= alpha + 0.04
        assert at_high.p_value is not None and 1 - alpha - 0.005 <= at_high.p_value <= 1 - alpha + 0.04


def test_mcnemar_with_a_margin_tests_the_shifted_share_and_reports_a_paired_interval() -> None:
    from scipy.stats import binomtest, norm

    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 800)
    old = np.where(rng.random(800) < 0.78, y, 1 - y)
    new = np.where(rng.random(800) < 0.86, y, 1 - y)
    b = int(np.sum((old == y) & (new != y)))
    c = int(np.sum((old != y) & (new == y)))
    n, d, margin, alpha = 800, b + c, 0.02, 0.1
    result = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                 cfg=GatesConfig(test="mcnemar", min_improvement=margin, alpha=alpha))
    # "improvement > margin" is "c/d > 1/2 + margin·n/(2d)": an exact one-sided binomial test
    assert result.p_value == pytest.approx(binomtest(c, d, 0.5 + margin * n / (2 * d), alternative="greater").pvalue)
    # the interval is the Wald interval of the mean per-row difference (right minus right)
    per_row = (new == y).astype(float) - (old == y).astype(float)
    se = per_row.std() / np.sqrt(n)
    z = norm.ppf(1 - alpha)
    assert result.ci_low == pytest.approx(per_row.mean() - z * se)
    assert result.ci_high == pytest.approx(per_row.mean() + z * se)
    # a margin no share of discordant pairs can clear has p = 1
    hopeless = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                   cfg=GatesConfig(test="mcnemar", min_improvement=d / n))
    assert hopeless.p_value == 1.0 and not hopeless.passed


@pytest.mark.parametrize("metric", ["accuracy", "rmse", "log_loss"])
def test_a_value_equal_to_its_reference_falls_short_by_a_plain_zero(metric: str) -> None:
    """Not -0.0: a drop of zero printed with a sign reads "-0.0000" in a reason."""
    import math

    from modelpilot.metrics import shortfall

    got = shortfall(metric, 0.8, 0.8)
    assert got == 0.0 and math.copysign(1.0, got) == 1.0
    assert f"{got:+.4f}" == "+0.0000"
