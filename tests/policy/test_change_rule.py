"""The change trigger: a located change waits for rows after it, fires, then paces refreshes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelpilot.config import PilotConfig
from modelpilot.policy.change import change_retrained
from modelpilot.policy.triggers import MonitoringSummary, TriggerOutcome, TriggerState, evaluate

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SINCE = T0 - timedelta(hours=3)


def make_cfg(**retraining: Any) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "m", "target": "y"},
                                  "retraining": {"recent_rows": 4000, "min_rows_after_change": 300, **retraining}})


def report(detected: bool, rows_after: int = 0, version: int = 1, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"method": "scan", "detected": detected, "statistic": 6.1 if detected else 1.2,
                            "threshold": 3.6, "p_value": 1e-6 if detected else 0.9, "alpha": 0.001, "n": 5000,
                            "n_reference": 100, "version": version}
    if detected:
        base.update(change_at=5000 - rows_after, rows_after=rows_after, level_before=0.1, level_after=0.2,
                    since=SINCE.isoformat())
    return {**base, **kw}


def tick(cfg: PilotConfig, change: dict[str, Any], state: TriggerState, at: datetime = T0) -> TriggerOutcome:
    s = MonitoringSummary(n_predictions=1000, n_labelled=1000, metric="accuracy", window_end=at, change=change)
    return evaluate(cfg, s, state, at)


def status(out: TriggerOutcome) -> tuple[str, str]:
    d = next(d for d in out.decisions if d.name == "change")
    return d.status, d.reason


def test_a_new_change_waits_for_rows_after_it_then_fires() -> None:
    cfg = make_cfg()
    out = tick(cfg, report(True, rows_after=120), TriggerState())
    st, reason = status(out)
    assert st == "insufficient_samples" and not out.retrain
    assert "rose from 0.1000 to 0.2000" in reason and "waiting" in reason and "needs 300" in reason
    assert out.new_state.change is not None and out.new_state.change.since == SINCE
    out = tick(cfg, report(True, rows_after=800), out.new_state, T0 + timedelta(minutes=5))
    assert status(out)[0] == "fired" and out.retrain
    assert "statistic 6.10 > critical 3.60" in status(out)[1]


def test_refreshes_at_the_factor_until_the_full_window() -> None:
    cfg = make_cfg(refresh_factor=4.0)
    state = tick(cfg, report(True, rows_after=500), TriggerState()).new_state
    state = change_retrained(state, 500)
    fired = []
    # the champion is now a model of the new concept: the detector is quiet on it
    for rows in (800, 1999, 2000, 2500, 4000, 8000, 20000):
        out = tick(cfg, report(False, version=2, rows_since_known=rows), state)
        if out.retrain:
            fired.append(rows)
            state = change_retrained(out.new_state, min(rows, 4000))
        else:
            state = out.new_state
    assert fired == [2000, 4000], fired
    assert state.change is not None and state.change.trained_rows == 4000
    assert "the full window" in status(tick(cfg, report(False, version=2, rows_since_known=9000), state))[1]


def test_a_last_step_that_would_not_double_the_rows_is_skipped() -> None:
    cfg = make_cfg(refresh_factor=4.0, recent_rows=5000)
    state = change_retrained(tick(cfg, report(True, rows_after=1000), TriggerState()).new_state, 4000)
    out = tick(cfg, report(False, version=2, rows_since_known=6000), state)
    assert not out.retrain and "full window" in status(out)[1]


def test_the_same_champion_refines_the_location_and_a_new_champion_starts_afresh() -> None:
    cfg = make_cfg()
    state = change_retrained(tick(cfg, report(True, rows_after=600), TriggerState()).new_state, 600)
    later = SINCE + timedelta(minutes=10)
    out = tick(cfg, report(True, rows_after=700, since=later.isoformat()), state)
    assert out.new_state.change is not None and out.new_state.change.since == later
    assert out.new_state.change.trained_rows == 600 and not out.retrain  # 700 < 4 x 600
    out = tick(cfg, report(True, rows_after=400, version=2, since=(later + timedelta(hours=1)).isoformat()), state)
    assert out.new_state.change is not None and out.new_state.change.version == 2
    assert out.new_state.change.trained_rows == 0 and out.retrain


def test_disabled_still_locates_the_change_for_other_retrains() -> None:
    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "triggers": {"change": {"enabled": False}}})
    out = tick(cfg, report(True, rows_after=900), TriggerState())
    assert not out.retrain and status(out)[0] == "quiet" and "disabled" in status(out)[1]
    assert out.new_state.change is not None


def test_the_change_survives_the_state_round_trip() -> None:
    state = tick(make_cfg(), report(True, rows_after=900), TriggerState()).new_state
    again = TriggerState.from_dict(state.to_dict())
    assert again.change == state.change


# --------------------------------------------------------------------------- drift as corroboration


def _drift_tick(weighted: float | None, change: dict[str, Any] | None, estimated: float | None = None,
                state: TriggerState | None = None) -> tuple[str, str, bool]:
    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "triggers": {"feature_drift": {"enabled": True}}})
    state = state or TriggerState()
    from modelpilot.policy.triggers import reset_reference

    state = reset_reference(state, 0.80, "v1 validation", metric="accuracy", now=T0, estimated=0.82)
    s = MonitoringSummary(n_predictions=1000, n_labelled=1000, metric="accuracy", window_end=T0, performance=0.79,
                          drift_share=0.6, drifted_features=["x1", "x2", "x3"], weighted_drift_share=weighted,
                          change=change, estimated_performance=estimated)
    out = evaluate(cfg, s, state, T0 + timedelta(hours=1))
    d = next(d for d in out.decisions if d.name == "feature_drift")
    return d.status, d.reason, out.retrain


def test_drift_on_unimportant_features_stays_under_the_threshold() -> None:
    status_, reason, retrain = _drift_tick(0.02, report(False, statistic=3.0))
    assert status_ == "quiet" and not retrain
    assert "importance-weighted share of drifted features 0.0200" in reason


def test_drift_on_important_features_is_a_watch_while_the_error_holds() -> None:
    status_, reason, retrain = _drift_tick(0.9, report(False, statistic=0.4))
    assert status_ == "watch" and not retrain and "watching, not retraining" in reason


def test_a_rising_error_or_a_falling_estimate_corroborates_drift_on_important_features() -> None:
    status_, reason, retrain = _drift_tick(0.9, report(False, statistic=2.0))
    assert status_ == "fired" and retrain and "error rate is rising (change statistic 2.00" in reason
    status_, reason, retrain = _drift_tick(0.9, report(False, statistic=0.4), estimated=0.76)
    assert status_ == "fired" and retrain and "label-free estimate is falling" in reason
