"""A canary walked step by step on a prediction log written directly: what each tick records.

The start event names the plan; a step held for ``hold_requests`` moves on at exactly that
many challenger calls, with a ``canary_step`` event; the last step promotes, and the state
keeps each step's numbers, the arms and the decision on the controller's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollout_helpers import MODEL, REnv, log_answers, prediction_log, traffic

from modelpilot.rollout import get_strategy
from modelpilot.rollout import state as st

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _challenger_calls(renv: REnv, n: int, seed: int) -> None:
    with prediction_log(renv) as writer:
        log_answers(writer, renv, MODEL, renv.healthy, traffic(n, seed=seed), role="primary")


def test_a_canary_records_its_plan_each_step_and_the_promotion(renv: REnv) -> None:
    renv.configure({"strategy": "canary", "canary": {"steps": [50.0, 100.0], "hold_requests": 20}})
    canary = get_strategy("canary", cfg=renv.cfg, artifacts=renv.artifacts)
    canary.start(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain", numbers={}, now=T0)
    state = st.active(renv.store, MODEL)
    assert state is not None
    (started,) = renv.store.events(model=MODEL, kind="rollout_started")
    assert started.numbers == {"strategy": "canary", "candidate": renv.healthy, "champion": renv.champion,
                               "share": 0.5, "rollout_id": state.id, "steps": [50.0, 100.0], "hold_requests": 20,
                               "hold_duration": None}
    assert started.reason == f"canary rollout of v{renv.healthy} against v{renv.champion}: retrain"

    _challenger_calls(renv, 19, seed=1)  # one call short of the hold
    waiting = canary.advance(renv.store, MODEL, now=T0 + timedelta(minutes=1))
    assert waiting is not None and (waiting.status, waiting.reason) == ("in_progress", "canary step 1 at 50%")
    assert (waiting.numbers["step"], waiting.numbers["share"], waiting.numbers["step_requests"]) == (1, 0.5, 19)
    state = st.active(renv.store, MODEL)
    assert state is not None and state.step == 0 and state.extra["step_requests"] == 19
    assert state.arms["challenger"]["requests"] == 19 and state.arms["challenger"]["errors"] == 0
    assert st.describe(renv.store, MODEL, renv.cfg, now=T0)["requests_left"] == 1  # type: ignore[index]
    assert renv.store.events(model=MODEL, kind="canary_step") == []

    _challenger_calls(renv, 1, seed=2)
    moved = canary.advance(renv.store, MODEL, now=T0 + timedelta(minutes=2))
    assert moved is not None and (moved.status, moved.reason) == ("in_progress", "canary moved to step 2 (100%)")
    (step,) = renv.store.events(model=MODEL, kind="canary_step")
    assert step.subject == f"v{renv.healthy}"
    assert step.reason == f"step 1/2 at 50% healthy after 20 requests; {moved.numbers['latency']}"
    assert step.numbers["step_requests"] == 20 and step.numbers["step"] == 1
    state = st.active(renv.store, MODEL)
    assert state is not None and (state.step, state.share) == (1, 1.0)
    assert state.step_started_at == (T0 + timedelta(minutes=2)).isoformat() and state.extra["step_requests"] == 0
    assert [h["step_requests"] for h in state.history] == [20]

    _challenger_calls(renv, 20, seed=3)
    done = T0 + timedelta(minutes=3)
    promoted = canary.advance(renv.store, MODEL, now=done)
    assert promoted is not None and (promoted.status, promoted.reason) == (
        "promoted", "canary healthy at every step (50%, 100%)")
    final, _ = st.load(renv.store, MODEL)
    assert final is not None and final.status == "promoted" and final.share == 0.0
    assert [h["step"] for h in final.history] == [1, 2] and [h["step_requests"] for h in final.history] == [20, 20]
    assert final.arms["challenger"]["requests"] == 40
    assert final.decision is not None and final.decision["time"] == done.isoformat()
    assert final.decision["reason"] == promoted.reason and final.decision["numbers"]["step"] == 2
    assert renv.store.get_alias(MODEL, "champion") == renv.healthy


def test_a_step_judges_latency_against_the_champion_in_that_step_only(renv: REnv) -> None:
    renv.configure({"strategy": "canary", "canary": {"steps": [50.0, 100.0], "hold_requests": 20,
                                                     "min_latency_samples": 20, "max_divergence": 1.0}})
    canary = get_strategy("canary", cfg=renv.cfg, artifacts=renv.artifacts)
    canary.start(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain", numbers={}, now=T0)
    with prediction_log(renv) as writer:  # step 1: both arms slow alike (a loaded machine)
        log_answers(writer, renv, MODEL, renv.champion, traffic(30, seed=11), latency_ms=500.0)
        log_answers(writer, renv, MODEL, renv.healthy, traffic(20, seed=12), latency_ms=500.0)
    moved = canary.advance(renv.store, MODEL, now=T0 + timedelta(minutes=1))
    assert moved is not None and moved.reason == "canary moved to step 2 (100%)"
    with prediction_log(renv) as writer:  # step 2: the champion is fast again, the challenger is not
        log_answers(writer, renv, MODEL, renv.champion, traffic(30, seed=13), latency_ms=1.0)
        log_answers(writer, renv, MODEL, renv.healthy, traffic(20, seed=14), latency_ms=500.0)
    decision = canary.advance(renv.store, MODEL, now=T0 + timedelta(minutes=2))
    assert decision is not None and decision.status == "rolled_back"
    assert decision.reason.startswith(
        "canary step 2 (100%) unhealthy: latency p99 500 ms vs the champion's 1 ms in the same period (20/30 calls): "
        "more than 1.5x and 20 ms above it on 20 calls")
    assert decision.numbers["latency_limit_ms"] == 21.0
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
