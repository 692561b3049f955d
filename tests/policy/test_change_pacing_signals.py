"""The change trigger's reading in full: state, reason, statistic, critical value and numbers.

The reading is what the decision and its event record (the dashboard shows the reason and
the numbers), so each test compares the whole :class:`Signal`, on both sides of each pacing
boundary: the first model's ``min_rows_after_change``, a refresh at ``refresh_factor`` times
the rows trained on, and the full ``recent_rows`` window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelpilot.config import PilotConfig
from modelpilot.policy.change import change_retrained, change_signal, moved_on
from modelpilot.policy.trigger_state import ChangeState, MonitoringSummary, Signal, TriggerState

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SINCE = T0 - timedelta(hours=3)
LEVEL = ("the error rate of v1 rose from 0.1000 to 0.2000 at 2023-12-31T21:00:00+00:00 (statistic 6.10 > critical "
         "3.60, p=1e-06, alpha 0.001 per check, 5000 labelled rows tested)")
KNOWN = "change at 2023-12-31T21:00:00+00:00 (found on v1)"


def make_cfg(**retraining: Any) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "m", "target": "y"},
                                  "retraining": {"recent_rows": 4000, "min_rows_after_change": 300, **retraining}})


def detected(rows_after: int) -> dict[str, Any]:
    return {"method": "scan", "detected": True, "statistic": 6.1, "threshold": 3.6, "p_value": 1e-6, "alpha": 0.001,
            "n": 5000, "version": 1, "rows_after": rows_after, "level_before": 0.1, "level_after": 0.2,
            "since": SINCE.isoformat()}


def quiet(rows_since_known: int | None) -> dict[str, Any]:
    return {"method": "scan", "detected": False, "statistic": 1.2, "threshold": 3.6, "p_value": 0.9, "alpha": 0.001,
            "n": 5000, "version": 2, "rows_since_known": rows_since_known}


def read(cfg: PilotConfig, rep: dict[str, Any] | None, known: ChangeState | None = None) -> tuple[Signal, ChangeState | None]:
    s = MonitoringSummary(n_predictions=1000, n_labelled=1000, metric="accuracy", window_end=T0, change=rep)
    return change_signal(cfg, s, TriggerState(change=known), T0)


def detected_numbers(rows_after: int, **extra: Any) -> dict[str, Any]:
    return {"method": "scan", "statistic": 6.1, "threshold": 3.6, "p_value": 1e-6, "alpha": 0.001, "n": 5000,
            "level_before": 0.1, "level_after": 0.2, "rows_after": rows_after, "since": SINCE.isoformat(),
            "rows_since_change": rows_after, **extra}


def quiet_numbers(rows: int, trained: int, **extra: Any) -> dict[str, Any]:
    return {"method": "scan", "statistic": 1.2, "threshold": 3.6, "p_value": 0.9, "alpha": 0.001, "n": 5000,
            "level_before": None, "level_after": None, "rows_after": None, "since": SINCE.isoformat(),
            "rows_since_change": rows, "trained_rows": trained, **extra}


def trained_on(rows: int) -> ChangeState:
    return ChangeState(since=SINCE, found_at=T0 - timedelta(hours=1), version=1, trained_rows=rows,
                       level_before=0.1, level_after=0.2, statistic=6.1)


def test_a_new_change_waits_for_min_rows_after_change_and_fires_at_exactly_that_many() -> None:
    waiting, known = read(make_cfg(), detected(299))
    assert waiting == Signal(
        "change", "insufficient",
        f"{LEVEL}; 299 labelled rows after it, the first model on rows after it needs 300: waiting "
        "(retraining.min_rows_after_change)",
        6.1, 3.6, detected_numbers(299, new=True, trained_rows=0, rows_needed=300))
    assert known == ChangeState(since=SINCE, found_at=T0, version=1, level_before=0.1, level_after=0.2, statistic=6.1)
    due, _ = read(make_cfg(), detected(300))
    assert due == Signal("change", "over",
                         f"{LEVEL}; 300 labelled rows after it, the first model on rows after it needs 300",
                         6.1, 3.6, detected_numbers(300, new=True, trained_rows=0, rows_needed=300))


def test_the_same_champion_still_showing_the_change_is_not_new() -> None:
    signal, known = read(make_cfg(), detected(700), trained_on(600))
    # 600 rows trained on: a refresh needs 4 x 600 = 2400
    assert signal == Signal(
        "change", "under",
        f"{LEVEL}; 700 labelled rows after it, a refresh: the last retrain read 600 rows after it "
        "(retraining.refresh_factor 4.0) needs 2400",
        6.1, 3.6, detected_numbers(700, trained_rows=600, rows_needed=2400))
    assert known == trained_on(600)  # the rows already trained on are kept


def test_a_refresh_is_due_at_refresh_factor_times_the_rows_trained_on() -> None:
    cfg = make_cfg()
    text = ("{rows} labelled rows after it, a refresh: the last retrain read 500 rows after it "
            "(retraining.refresh_factor 4.0) needs 2000")
    under, known = read(cfg, quiet(1999), trained_on(500))
    assert under == Signal("change", "under", f"{KNOWN}; {text.format(rows=1999)}", 1.2, 3.6,
                           quiet_numbers(1999, 500, rows_needed=2000))
    assert known == trained_on(500)
    over, _ = read(cfg, quiet(2000), trained_on(500))
    assert over == Signal("change", "over", f"{KNOWN}; {text.format(rows=2000)}", 1.2, 3.6,
                          quiet_numbers(2000, 500, rows_needed=2000))
    # no count of rows since the change: none yet
    nothing, _ = read(cfg, quiet(None), trained_on(500))
    assert nothing.state == "under" and nothing.numbers["rows_since_change"] == 0


def test_a_model_trained_on_the_full_window_ends_the_refreshes() -> None:
    full, _ = read(make_cfg(), quiet(9000), trained_on(4000))
    assert full == Signal("change", "under", f"{KNOWN}; a model has learned from 4000 rows after it, the full window "
                          "(retraining.recent_rows 4000)", 1.2, 3.6, quiet_numbers(9000, 4000))
    # one row short of the window: the last step is taken only if it doubles the rows, 4000 < 2 x 3999
    assert read(make_cfg(), quiet(9000), trained_on(3999))[0].reason.endswith("the full window "
                                                                             "(retraining.recent_rows 4000)")
    # half the window: the step to the full window doubles the rows, so it is taken
    half, _ = read(make_cfg(), quiet(4000), trained_on(2000))
    assert half.state == "over" and half.numbers["rows_needed"] == 4000


def test_a_refresh_of_exactly_refresh_factor_rows_below_the_window_is_taken() -> None:
    # factor 1.5 on 1000 rows: 1500 is below the 4000 window, so the step is not cut short
    signal, _ = read(make_cfg(refresh_factor=1.5), quiet(1500), trained_on(1000))
    assert signal == Signal(
        "change", "over",
        f"{KNOWN}; 1500 labelled rows after it, a refresh: the last retrain read 1000 rows after it "
        "(retraining.refresh_factor 1.5) needs 1500",
        1.2, 3.6, quiet_numbers(1500, 1000, rows_needed=1500))


def test_no_change_found_or_no_errors_to_test() -> None:
    holds, known = read(make_cfg(), quiet(None))
    assert known is None
    assert holds == Signal("change", "under", "the champion's error rate holds (statistic 1.20 <= critical 3.60)", 1.2,
                           3.6, {"method": "scan", "statistic": 1.2, "threshold": 3.6, "p_value": 0.9, "alpha": 0.001,
                                 "n": 5000, "level_before": None, "level_after": None, "rows_after": None})
    untested, _ = read(make_cfg(), {"detected": False})
    assert (untested.state, untested.reason, untested.value, untested.threshold) == (
        "under", "the champion's error rate holds", None, 0.0)
    assert read(make_cfg(), None) == (Signal("change", "none", "no labelled errors of the champion to test"), None)


def test_a_disabled_change_trigger_reads_nothing_but_keeps_the_change() -> None:
    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "triggers": {"change": {"enabled": False}},
                                 "retraining": {"recent_rows": 4000, "min_rows_after_change": 300}})
    signal, known = read(cfg, detected(900))
    assert signal == Signal("change", "none", f"disabled (triggers.change.enabled); {LEVEL}; 900 labelled rows after "
                            "it, the first model on rows after it needs 300")
    assert known is not None and known.version == 1
    assert read(cfg, None)[0] == Signal("change", "none", "no labelled errors of the champion to test")


def test_change_retrained_keeps_the_most_rows_read() -> None:
    state = TriggerState(change=trained_on(500))
    assert change_retrained(state, 800).change == trained_on(800)
    assert change_retrained(state, 300).change == trained_on(500)
    assert change_retrained(TriggerState(), 800) == TriggerState()


def test_moved_on_restarts_the_change_when_a_later_champion_degrades() -> None:
    state = TriggerState(change=trained_on(4000))
    took_over = T0 - timedelta(minutes=30)
    s = MonitoringSummary(n_predictions=1, n_labelled=1, metric="accuracy", window_end=T0,
                          change={"version": 2, "champion_since": took_over.isoformat()})
    moved = moved_on(state, s, ["performance_drop"], T0)
    assert moved.change == ChangeState(since=took_over, found_at=T0, version=2)
    assert moved_on(state, s, ["segment_performance_drop"], T0).change == moved.change
    # not moved: the change trigger fired too, no performance trigger fired, the same champion
    assert moved_on(state, s, ["performance_drop", "change"], T0) == state
    assert moved_on(state, s, ["feature_drift"], T0) == state
    same = MonitoringSummary(n_predictions=1, n_labelled=1, metric="accuracy", window_end=T0,
                             change={"version": 1, "champion_since": took_over.isoformat()})
    assert moved_on(state, same, ["performance_drop"], T0) == state
    unknown = MonitoringSummary(n_predictions=1, n_labelled=1, metric="accuracy", window_end=T0, change={"version": 2})
    assert moved_on(state, unknown, ["performance_drop"], T0) == state
    assert moved_on(TriggerState(), s, ["performance_drop"], T0) == TriggerState()
