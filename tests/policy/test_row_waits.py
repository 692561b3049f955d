"""The loop's waits counted in labelled rows: cooldowns and the budget's period, both sides of each boundary.

A wait in rows counts the labelled rows served strictly after its event (the firing, the
retrain), whatever the clock: the same rows spread over seconds or over years decide the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelpilot.config import BudgetConfig, PilotConfig
from modelpilot.errors import ConfigError
from modelpilot.policy.budget import check_budget
from modelpilot.policy.trigger_state import RowClock
from modelpilot.policy.triggers import MonitoringSummary, TriggerState, evaluate, reset_reference

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def cfg_with(triggers: dict[str, Any] | None = None, budget: dict[str, Any] | None = None) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}, "triggers": triggers or {},
                                  "budget": budget or {"max_retrains": None}})


def clock(fired: datetime, after: int, *, step: timedelta = timedelta(seconds=1), before: int = 50) -> RowClock:
    """Labelled rows: ``before`` rows up to and at ``fired`` (not counted), then ``after`` rows after it."""
    times = [fired - k * step for k in range(before)] + [fired + (k + 1) * step for k in range(after)]
    return RowClock.of(times)


def window(rows: RowClock, now: datetime, performance: float = 0.70) -> MonitoringSummary:
    return MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=now,
                             performance=performance, rows=rows)


def fired_once(cfg: PilotConfig) -> tuple[TriggerState, datetime]:
    state = reset_reference(TriggerState(), 0.86, "v1 validation", metric="accuracy", now=T0)
    out = evaluate(cfg, window(RowClock.of([]), T0), state, T0)
    assert out.retrain and out.new_state.last_fired["performance_drop"] == T0
    return out.new_state, T0


# --------------------------------------------------------------------------- config


def test_the_defaults_are_in_labelled_rows() -> None:
    cfg = PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}})
    rule = cfg.triggers.performance_drop
    assert (rule.cooldown_rows, rule.cooldown) == (1000, None)
    assert (cfg.budget.period_rows, cfg.budget.period) == (50_000, None)
    assert cfg.budget.report_seconds == 7 * 86400  # the ROI report still reads weeks


def test_a_time_value_alone_still_works_and_turns_the_rows_default_off() -> None:
    cfg = cfg_with({"performance_drop": {"cooldown": "2h"}}, {"period": "7d", "max_retrains": 3})
    assert (cfg.triggers.performance_drop.cooldown, cfg.triggers.performance_drop.cooldown_rows) == (7200.0, None)
    assert (cfg.budget.period, cfg.budget.period_rows) == (7 * 86400.0, None)
    assert cfg.budget.report_seconds == 7 * 86400.0


@pytest.mark.parametrize(("section", "raw", "words"), [
    ("triggers", {"performance_drop": {"cooldown": "1h", "cooldown_rows": 500}}, "cooldown ('1h') and cooldown_rows (500)"),
    ("budget", {"period": "7d", "period_rows": 5000}, "period ('7d') and period_rows (5000)"),
    ("triggers", {"performance_drop": {"cooldown_rows": -1}}, "cooldown_rows"),
    ("triggers", {"performance_drop": {"cooldown_rows": "a lot"}}, "cooldown_rows"),
    ("budget", {"period": "soon"}, "expected a duration"),
    ("budget", {"period_rows": 0}, "period_rows"),
    ("budget", {"period_rows": None, "max_retrains": 3}, "the budget needs a period"),
])
def test_both_or_malformed_waits_are_a_config_error_naming_the_key(section: str, raw: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}, section: raw})
    assert words in str(err.value), str(err.value)


# --------------------------------------------------------------------------- cooldown in rows


@pytest.mark.parametrize("step", [timedelta(microseconds=1), timedelta(seconds=1), timedelta(days=1)])
def test_a_row_cooldown_holds_until_exactly_its_rows_whatever_the_clock(step: timedelta) -> None:
    cfg = cfg_with({"performance_drop": {"threshold": 0.05, "cooldown_rows": 300}})
    state, fired = fired_once(cfg)
    now_short, now_full = fired + 299 * step, fired + 300 * step
    short = evaluate(cfg, window(clock(fired, 299, step=step), now_short), state, now_short)
    d = next(d for d in short.decisions if d.name == "performance_drop")
    assert d.status == "suppressed_cooldown" and not short.retrain
    assert "299 labelled rows since, cooldown 300 labelled rows (cooldown_rows), 1 more needed" in d.reason
    assert d.numbers["cooldown_rows"] == 300
    full = evaluate(cfg, window(clock(fired, 300, step=step), now_full), state, now_full)
    assert next(d for d in full.decisions if d.name == "performance_drop").status == "fired" and full.retrain


def test_rows_served_at_the_firing_itself_do_not_count() -> None:
    cfg = cfg_with({"performance_drop": {"threshold": 0.05, "cooldown_rows": 3}})
    state, fired = fired_once(cfg)
    # three rows at the very time of the firing, two after it: two, one short
    rows = RowClock.of([fired, fired, fired, fired + timedelta(seconds=1), fired + timedelta(seconds=2)])
    out = evaluate(cfg, window(rows, fired + timedelta(hours=5)), state, fired + timedelta(hours=5))
    assert next(d for d in out.decisions if d.name == "performance_drop").status == "suppressed_cooldown"


def test_a_time_cooldown_ignores_the_rows() -> None:
    cfg = cfg_with({"performance_drop": {"threshold": 0.05, "cooldown": "1h"}})
    state, fired = fired_once(cfg)
    many = clock(fired, 10_000, step=timedelta(milliseconds=1))
    soon = evaluate(cfg, window(many, fired + timedelta(minutes=30)), state, fired + timedelta(minutes=30))
    assert next(d for d in soon.decisions if d.name == "performance_drop").status == "suppressed_cooldown"


def test_a_drift_watch_in_rows_is_reported_again_only_after_its_rows() -> None:
    cfg = cfg_with({"feature_drift": {"enabled": True, "threshold": 0.3, "cooldown_rows": 200}})
    state = reset_reference(TriggerState(), 0.80, "v1 validation", metric="accuracy", now=T0)

    def drifted(rows: RowClock, now: datetime) -> MonitoringSummary:
        return MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy", window_end=now,
                                 performance=0.80, drift_share=0.6, drifted_features=["age"], rows=rows)

    first = evaluate(cfg, drifted(RowClock.of([]), T0), state, T0)
    assert next(d for d in first.decisions if d.name == "feature_drift").status == "watch"
    later = T0 + timedelta(days=30)
    again = evaluate(cfg, drifted(clock(T0, 199), later), first.new_state, later)
    assert next(d for d in again.decisions if d.name == "feature_drift").status == "quiet"
    after = evaluate(cfg, drifted(clock(T0, 200), later), first.new_state, later)
    assert next(d for d in after.decisions if d.name == "feature_drift").status == "watch"


# --------------------------------------------------------------------------- budget period in rows


def test_a_retrain_counts_against_the_budget_until_exactly_period_rows_after_it() -> None:
    cfg = BudgetConfig(max_retrains=1, period_rows=1000)
    retrain = T0
    now = T0 + timedelta(days=365)  # a year later: a budget in rows does not care
    inside = check_budget(cfg, [(retrain, 1.0)], now, rows_since=clock(retrain, 999).since)
    assert not inside.allowed and inside.retrains == 1
    assert "1 retrains in the last 1000 labelled rows reached budget.max_retrains 1" in inside.reason
    assert inside.numbers()["budget_period_rows"] == 1000 and inside.numbers()["budget_period_seconds"] is None
    edge = check_budget(cfg, [(retrain, 1.0)], now, rows_since=clock(retrain, 1000).since)
    assert edge.allowed and edge.retrains == 0
    # with no row clock every past retrain still counts: never more retrains than allowed
    assert not check_budget(cfg, [(retrain, 1.0)], now).allowed


def test_the_cost_cap_reads_the_same_rows_period() -> None:
    cfg = BudgetConfig(max_retrains=None, max_cost=1.5, period_rows=500)
    first, second = T0, T0 + timedelta(seconds=10)
    now = T0 + timedelta(seconds=20)

    def rows(after_second: int) -> RowClock:  # one row between the retrains, the rest after the second
        return RowClock.of([first + timedelta(seconds=5)] + [second + k * timedelta(milliseconds=1)
                                                              for k in range(1, after_second + 1)])

    # 499 rows after the second retrain: it still counts, 1.00 + the next 1.00 passes the cap
    refused = check_budget(cfg, [(first, 1.0), (second, 1.0)], now, next_cost=1.0, rows_since=rows(499).since)
    assert not refused.allowed and "1.00 spent in the last 500 labelled rows" in refused.reason
    # 500 rows after it: both are out of the period
    assert check_budget(cfg, [(first, 1.0), (second, 1.0)], now, next_cost=1.0, rows_since=rows(500).since).allowed


def test_evaluate_drops_retrains_older_than_the_rows_period() -> None:
    cfg = cfg_with({"performance_drop": {"threshold": 0.05, "cooldown_rows": 0}}, {"max_retrains": 1, "period_rows": 400})
    state, fired = fired_once(cfg)
    state = TriggerState(**{**state.__dict__, "retrains": [(fired, 1.0)]})
    later = fired + timedelta(hours=1)
    short = evaluate(cfg, window(clock(fired, 399), later), state, later)
    assert not short.retrain and next(d for d in short.decisions if d.name == "performance_drop").status == "suppressed_budget"
    full = evaluate(cfg, window(clock(fired, 400), later), state, later)
    assert full.retrain and full.new_state.retrains == []  # the old retrain is out of the period


def test_a_row_clock_from_counted_reports_counts_each_reports_rows() -> None:
    """Edge devices report counts, not rows: each report's rows count at the time it arrived."""
    clock = RowClock.of_counts([T0 + timedelta(hours=2), T0, T0 + timedelta(hours=1)], [300, 500, 0])
    assert clock.since(T0 - timedelta(seconds=1)) == 800
    assert clock.since(T0) == 300 and clock.since(T0 + timedelta(hours=2)) == 0
    # no labels on the devices: the drift acts alone, once 300 rows arrived after its last firing
    cfg = cfg_with({"feature_drift": {"enabled": True, "threshold": 0.3, "cooldown_rows": 300}})
    state = reset_reference(TriggerState(), 0.80, "v1 validation", metric="accuracy", now=T0)
    state = TriggerState(**{**state.__dict__, "last_fired": {"feature_drift": T0}})
    later = T0 + timedelta(hours=3)

    def status(rows: RowClock) -> str:
        drifted = MonitoringSummary(n_predictions=800, n_labelled=0, metric="accuracy", window_end=later,
                                    drift_share=0.6, drifted_features=["age"], rows=rows)
        return next(d for d in evaluate(cfg, drifted, state, later).decisions if d.name == "feature_drift").status

    assert status(clock) == "fired"
    assert status(RowClock.of_counts([T0, T0 + timedelta(hours=2)], [500, 299])) == "suppressed_cooldown"
