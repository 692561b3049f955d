"""Canary over real HTTP: healthy challengers go all the way, faulty ones are rolled back."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rollout_helpers import MODEL, REnv, send, serve, traffic

from modelpilot.config import CanaryConfig
from modelpilot.rollout.canary import latency_check
from modelpilot.rollout.state import load
from modelpilot.serving.cache import Prediction

CANARY = {"strategy": "canary", "canary": {"steps": [20, 50, 100], "hold_requests": 25, "min_latency_samples": 20,
                                           "max_divergence": 0.3, "min_labelled": 1000}}


def run_canary(env: REnv, candidate: int, injector: Any = None, rounds: int = 8, per_round: int = 80) -> Any:
    env.configure(CANARY)
    env.start("canary", candidate)
    decision = None
    with serve(env, injector) as server:
        server.wait_refreshed()
        for r in range(rounds):
            send(server, traffic(per_round, seed=r), labels=False)
            server.flush()
            decision = env.advance()
            server.wait_refreshed()
            if decision.status != "in_progress":
                break
    return decision


def test_healthy_canary_walks_every_step_and_promotes(renv: REnv) -> None:
    decision = run_canary(renv, renv.healthy)
    assert decision.status == "promoted", decision.reason
    assert renv.store.get_alias(MODEL, "champion") == renv.healthy
    steps = [e for e in renv.store.events(model=MODEL, kind="canary_step")]
    assert [e.numbers["step"] for e in reversed(steps)] == [1, 2, 3]
    assert renv.store.get_alias(MODEL, "challenger") is None


def raising(model: Any, columns: dict[str, np.ndarray]) -> Prediction | None:
    if model.version == 2:
        raise RuntimeError("challenger exploded")
    return None


def slow(model: Any, columns: dict[str, np.ndarray]) -> Prediction | None:
    if model.version == 2:
        time.sleep(0.3)
    return None


@pytest.mark.parametrize(("injector", "expect"), [(raising, "error rate"), (slow, "more than 1.5x")])
def test_faulty_challenger_is_rolled_back(renv: REnv, injector: Any, expect: str) -> None:
    decision = run_canary(renv, renv.healthy, injector, rounds=3, per_round=60)
    assert decision.status == "rolled_back"
    assert expect in decision.reason
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"
    event = renv.store.events(model=MODEL, kind="rolled_back")[0]
    assert expect in event.reason and event.numbers["step"] == 1
    if injector is slow:  # 300 ms per call against a champion answering in a few ms
        assert "vs the champion's" in event.reason and "in the same period" in event.reason
        assert event.numbers["latency_p99_ms"] > 1.5 * event.numbers["champion_latency_p99_ms"] + 20


def test_worse_challenger_is_rolled_back_on_divergence(renv: REnv) -> None:
    decision = run_canary(renv, renv.worse, rounds=3, per_round=60)
    assert decision.status == "rolled_back"
    assert "divergence" in decision.reason
    state, _ = load(renv.store, MODEL)
    assert state is not None and state.decision["numbers"]["divergence"] > 0.3


def _calls(n: int, typical_ms: float, slow_ms: float, n_slow: int, seed: int) -> pd.DataFrame:
    latency = np.random.default_rng(seed).gamma(4.0, typical_ms / 4.0, n)
    latency[:n_slow] = slow_ms
    return pd.DataFrame({"latency_ms": latency})


def test_latency_under_load_is_judged_against_the_champion_in_the_same_period() -> None:
    cc = CanaryConfig()
    # under load both arms are slow: 20 of the challenger's calls take 301 ms, the champion
    # has its share of slow calls too; the old absolute rule ("p99 301 ms > 250 ms") rolled back
    champ, chal = _calls(2000, 60, 300, 100, seed=1), _calls(400, 50, 301, 20, seed=2)
    breach, numbers = latency_check(cc, champ, chal)
    assert breach is None, breach
    assert numbers["latency_p99_ms"] > 250 and numbers["champion_latency_p99_ms"] > 250
    assert "in the same period (400/2000 calls)" in numbers["latency"]
    # 20 slow calls alone are not a sample: not judged, and the numbers say so
    breach, numbers = latency_check(cc, champ, _calls(20, 50, 301, 20, seed=3))
    assert breach is None and "not judged yet: 20 challenger" in numbers["latency"]
    assert "min_latency_samples" in numbers["latency"]


def test_a_truly_slower_challenger_breaches_and_the_hard_limit_is_optional() -> None:
    champ = _calls(2000, 40, 40, 0, seed=4)
    chal = _calls(400, 160, 160, 0, seed=5)  # four times slower, in the same period
    breach, numbers = latency_check(CanaryConfig(), champ, chal)
    assert breach is not None and "more than 1.5x and 20 ms above it" in breach
    assert numbers["latency_ratio"] > 3
    # a few ms of jitter on a fast model is not "1.5x slower"
    assert latency_check(CanaryConfig(), _calls(500, 2, 2, 0, seed=6), _calls(500, 4, 4, 0, seed=7))[0] is None
    # the optional absolute ceiling still applies, on the same minimum sample
    similar = _calls(400, 40, 40, 0, seed=8)
    assert latency_check(CanaryConfig(), champ, similar)[0] is None
    breach, _ = latency_check(CanaryConfig(max_latency_p99_ms=50), champ, similar)
    assert breach is not None and "hard limit 50 ms" in breach
