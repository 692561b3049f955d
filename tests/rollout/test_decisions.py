"""Each rollout decision over real HTTP traffic, on the controller's (simulated) clock.

The canary's share is measured at every step from the versions that answered real
requests (within binomial tolerance), a labelled-metric breach rolls back, ``hold_duration``
holds a step until exactly its end; A/B and shadow promote a challenger that is truly
better (the champion is the majority-class model), ``max_duration`` ends an inconclusive
experiment, and the sequential test stops long before the fixed-horizon sample.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from rollout_helpers import MODEL, REnv, send, serve, traffic
from scipy import stats as sps

from modelpilot.rollout import get_strategy
from modelpilot.rollout.state import load

T0 = datetime(2026, 3, 1, tzinfo=UTC)
# health limits far from what a loaded test machine measures: these tests are about decisions
CALM = {"max_latency_p99_ms": 60_000, "max_divergence": 1.0, "min_labelled": 100_000}


def start(env: REnv, strategy: str, candidate: int, champion: int, now: datetime = T0) -> None:
    get_strategy(strategy, cfg=env.cfg, artifacts=env.artifacts).start(
        env.store, MODEL, candidate, champion=champion, reason="test", numbers={}, now=now)


def advance(env: REnv, now: datetime) -> Any:
    state, _ = load(env.store, MODEL)
    assert state is not None
    return get_strategy(state.strategy, cfg=env.cfg, artifacts=env.artifacts).advance(env.store, MODEL, now=now)


def answered_by(answers: list[dict[str, Any]]) -> np.ndarray:
    out: list[int] = []
    for a in answers:
        out += a.get("model_versions") or [a["model_version"]] * len(a["ids"])
    return np.array(out)


def champion_is_the_majority_model(env: REnv) -> tuple[int, int]:
    """Make the majority-class model (v3) the champion; v1 is then a truly better challenger."""
    env.store.set_alias(MODEL, "champion", env.worse)
    return env.worse, env.champion


# --------------------------------------------------------------------------- canary


def test_canary_share_grows_step_by_step_and_promotes_after_the_last(renv: REnv) -> None:
    steps = [10.0, 40.0, 100.0]
    renv.configure({"strategy": "canary", "canary": {"steps": steps, "hold_requests": 20, **CALM}})
    start(renv, "canary", renv.healthy, renv.champion)
    with serve(renv) as server:
        for i, share in enumerate(steps):
            server.wait_refreshed()
            versions = answered_by(send(server, traffic(400, seed=100 + i), batch=20, labels=False))
            n_chal = int((versions == renv.healthy).sum())
            assert set(versions) <= {renv.champion, renv.healthy}
            if share < 100:
                assert sps.binomtest(n_chal, len(versions), share / 100).pvalue > 1e-6, (i, n_chal)
            else:
                assert n_chal == len(versions)
            state, _ = load(renv.store, MODEL)
            assert state is not None and state.step == i and state.share == share / 100
            server.flush()
            decision = advance(renv, T0 + timedelta(minutes=i + 1))
            if i + 1 < len(steps):
                assert decision.status == "in_progress", decision.reason
                assert renv.store.get_alias(MODEL, "champion") == renv.champion
            else:
                assert decision.status == "promoted", decision.reason
    assert renv.store.get_alias(MODEL, "champion") == renv.healthy
    assert renv.store.get_alias(MODEL, "challenger") is None
    assert [e.numbers["step"] for e in reversed(renv.store.events(model=MODEL, kind="canary_step"))] == [1, 2, 3]


def test_canary_rolls_back_when_the_labelled_metric_is_worse(renv: REnv) -> None:
    renv.configure({"strategy": "canary", "canary": {
        "steps": [50.0, 100.0], "hold_requests": 100_000, **CALM, "min_labelled": 50, "metric_tolerance": 0.03}})
    start(renv, "canary", renv.worse, renv.champion)
    with serve(renv) as server:
        server.wait_refreshed()
        send(server, traffic(300, seed=7), batch=20)
        server.flush()
        decision = advance(renv, T0 + timedelta(minutes=1))
    assert decision.status == "rolled_back", decision.reason
    assert "worse by" in decision.reason and "on labelled traffic" in decision.reason
    assert decision.numbers["challenger_metric"] < decision.numbers["champion_metric"] - 0.03
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    assert renv.store.get_version(MODEL, renv.worse).status == "rejected"


def test_a_labelled_metric_within_tolerance_does_not_roll_back(renv: REnv) -> None:
    renv.configure({"strategy": "canary", "canary": {
        "steps": [50.0, 100.0], "hold_requests": 100_000, **CALM, "min_labelled": 50, "metric_tolerance": 1.0}})
    start(renv, "canary", renv.worse, renv.champion)
    with serve(renv) as server:
        server.wait_refreshed()
        send(server, traffic(300, seed=7), batch=20)
        server.flush()
        decision = advance(renv, T0 + timedelta(minutes=1))
    assert decision.status == "in_progress", decision.reason
    assert decision.numbers["challenger_metric"] < decision.numbers["champion_metric"]


def test_canary_holds_each_step_for_exactly_hold_duration_on_the_controller_clock(renv: REnv) -> None:
    renv.configure({"strategy": "canary", "canary": {"steps": [30.0, 100.0], "hold_requests": 1,
                                                     "hold_duration": "1h", **CALM}})
    start(renv, "canary", renv.healthy, renv.champion, now=T0)
    hour = timedelta(hours=1)
    with serve(renv) as server:
        server.wait_refreshed()
        send(server, traffic(200, seed=8), batch=20, labels=False)
        server.flush()
        held = advance(renv, T0 + hour - timedelta(seconds=1))
        assert held.status == "in_progress" and load(renv.store, MODEL)[0].step == 0  # type: ignore[union-attr]
        moved = advance(renv, T0 + hour)
        assert moved.status == "in_progress" and "moved to step 2" in moved.reason
        assert load(renv.store, MODEL)[0].share == 1.0  # type: ignore[union-attr]
        server.wait_refreshed()
        send(server, traffic(100, seed=9), batch=20, labels=False)
        server.flush()
        assert advance(renv, T0 + 2 * hour - timedelta(seconds=1)).status == "in_progress"
        assert advance(renv, T0 + 2 * hour).status == "promoted"
    assert renv.store.get_alias(MODEL, "champion") == renv.healthy


# --------------------------------------------------------------------------- A/B


def run_ab(env: REnv, champion: int, candidate: int, rounds: int, per_round: int = 200, **ab: Any) -> Any:
    env.configure({"strategy": "ab", "ab": {"share": 0.5, **ab}, "canary": CALM})
    start(env, "ab", candidate, champion)
    decision = None
    with serve(env) as server:
        server.wait_refreshed()
        for r in range(rounds):
            send(server, traffic(per_round, seed=200 + r), batch=20)
            server.flush()
            decision = advance(env, T0 + timedelta(minutes=r + 1))
            if decision.status != "in_progress":
                break
    return decision


def test_ab_promotes_a_truly_better_challenger(renv: REnv) -> None:
    champion, better = champion_is_the_majority_model(renv)
    decision = run_ab(renv, champion, better, rounds=8, min_detectable_effect=0.1)
    assert decision.status == "promoted", decision.reason
    assert decision.numbers["effect"] > 0 and decision.numbers["ci_low"] > 0 and decision.numbers["p_value"] < 0.05
    assert min(decision.numbers["n_champion"], decision.numbers["n_challenger"]) >= decision.numbers["n_required"]
    assert renv.store.get_alias(MODEL, "champion") == better


def test_ab_sequential_test_decides_before_the_fixed_horizon_sample(renv: REnv) -> None:
    champion, better = champion_is_the_majority_model(renv)
    decision = run_ab(renv, champion, better, rounds=6, min_detectable_effect=0.05, sequential=True)
    assert decision.status == "promoted", decision.reason
    assert decision.numbers["test"] == "msprt" and decision.numbers["p_value"] < 0.05
    # the fixed-horizon test would have needed far more labelled rows per arm
    assert decision.numbers["n_challenger"] < decision.numbers["n_required"] / 2


def test_ab_max_duration_ends_an_inconclusive_experiment_exactly_on_time(renv: REnv) -> None:
    renv.configure({"strategy": "ab", "ab": {"share": 0.5, "min_detectable_effect": 0.005, "max_duration": "2h"},
                    "canary": CALM})
    start(renv, "ab", renv.healthy, renv.champion, now=T0)
    with serve(renv) as server:
        server.wait_refreshed()
        send(server, traffic(200, seed=11), batch=20)
        server.flush()
        before = advance(renv, T0 + timedelta(hours=2) - timedelta(seconds=1))
        assert before.status == "in_progress" and before.numbers["n_required"] > 1000
        ended = advance(renv, T0 + timedelta(hours=2))
    assert ended.status == "rejected" and "experiment period (7200s) ended" in ended.reason
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"


# --------------------------------------------------------------------------- shadow


def test_shadow_promotes_a_truly_better_challenger(renv: REnv) -> None:
    champion, better = champion_is_the_majority_model(renv)
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": 150}}, gates={"n_bootstrap": 300})
    start(renv, "shadow", better, champion)
    with serve(renv) as server:
        server.wait_refreshed()
        answers = send(server, traffic(200, seed=12), batch=10)
        server.flush()
        decision = advance(renv, T0 + timedelta(minutes=1))
    assert {a["model_version"] for a in answers} == {champion}  # the shadow never answered
    assert decision.status == "promoted", decision.reason
    assert decision.numbers["pairs"] >= 150 and decision.numbers["delta"] > 0 and decision.numbers["p_value"] < 0.05
    assert renv.store.get_alias(MODEL, "champion") == better


def test_shadow_waits_for_min_labelled_pairs(renv: REnv) -> None:
    champion, better = champion_is_the_majority_model(renv)
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": 150}}, gates={"n_bootstrap": 300})
    start(renv, "shadow", better, champion)
    with serve(renv) as server:
        server.wait_refreshed()
        rows = traffic(200, seed=13)
        send(server, rows, batch=10, labels=False)
        feedback = rows.iloc[:149]
        r = server.client.post(f"/v1/models/{MODEL}/feedback",
                               json={"ids": feedback["id"].tolist(), "labels": feedback["churned"].tolist()})
        assert r.status_code == 200
        server.flush()
        waiting = advance(renv, T0 + timedelta(minutes=1))
        assert waiting.status == "in_progress" and "149 of 150 labelled pairs" in waiting.reason
        one_more = rows.iloc[149:150]
        server.client.post(f"/v1/models/{MODEL}/feedback",
                           json={"ids": one_more["id"].tolist(), "labels": one_more["churned"].tolist()})
        server.flush()
        decided = advance(renv, T0 + timedelta(minutes=2))
    assert decided.status == "promoted", decided.reason
    assert decided.numbers["pairs"] == 150


# --------------------------------------------------------------------------- approval timeouts


def test_an_approval_timeout_set_to_approve_approves_at_exactly_the_timeout(renv: REnv) -> None:
    from modelpilot.rollout import review

    renv.configure({"strategy": "replace"}, gates={"approval_timeout": "1h", "on_approval_timeout": "approve"})
    review.request_review(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain")
    asked = renv.store.get_approval(MODEL, renv.healthy).requested_at
    early = review.check_timeouts(renv.store, renv.cfg, MODEL, now=asked + timedelta(hours=1) - timedelta(seconds=1))
    assert early == [] and renv.store.get_approval(MODEL, renv.healthy).status == "pending"
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    done = review.check_timeouts(renv.store, renv.cfg, MODEL, now=asked + timedelta(hours=1))
    assert done == [f"v{renv.healthy} approved on timeout"]
    approval = renv.store.get_approval(MODEL, renv.healthy)
    assert (approval.status, approval.actor) == ("approved", "timeout")
    assert renv.store.get_alias(MODEL, "champion") == renv.healthy
    assert renv.store.get_version(MODEL, renv.healthy).status == "registered"


def test_an_approval_timeout_set_to_reject_rejects_at_exactly_the_timeout(renv: REnv) -> None:
    from modelpilot.rollout import review

    renv.configure({"strategy": "replace"}, gates={"approval_timeout": "1h", "on_approval_timeout": "reject"})
    review.request_review(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain")
    asked = renv.store.get_approval(MODEL, renv.healthy).requested_at
    assert review.check_timeouts(renv.store, renv.cfg, MODEL, now=asked + timedelta(seconds=3599)) == []
    assert review.check_timeouts(renv.store, renv.cfg, MODEL, now=asked + timedelta(hours=1)) == [
        f"v{renv.healthy} rejected on timeout"]
    assert renv.store.get_approval(MODEL, renv.healthy).status == "rejected"
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"


def test_approving_on_timeout_starts_the_configured_progressive_rollout(renv: REnv) -> None:
    from modelpilot.rollout import review

    renv.configure({"strategy": "canary", "canary": {"steps": [25.0, 100.0], **CALM}},
                   gates={"approval_timeout": "10m", "on_approval_timeout": "approve"})
    review.request_review(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain")
    asked = renv.store.get_approval(MODEL, renv.healthy).requested_at
    review.check_timeouts(renv.store, renv.cfg, MODEL, now=asked + timedelta(minutes=10), artifacts=renv.artifacts)
    state, _ = load(renv.store, MODEL)
    assert state is not None and state.active and state.strategy == "canary" and state.share == 0.25
    assert renv.store.get_alias(MODEL, "challenger") == renv.healthy
    assert renv.store.get_alias(MODEL, "champion") == renv.champion  # the canary decides, not the timeout
    with serve(renv) as server:
        server.wait_refreshed()
        versions = answered_by(send(server, traffic(200, seed=14), batch=20, labels=False))
    assert sps.binomtest(int((versions == renv.healthy).sum()), len(versions), 0.25).pvalue > 1e-6
