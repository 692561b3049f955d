"""Canary over real HTTP: healthy challengers go all the way, faulty ones are rolled back."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from rollout_helpers import MODEL, REnv, send, serve, traffic

from modelpilot.rollout.state import load
from modelpilot.serving.cache import Prediction

CANARY = {"strategy": "canary", "canary": {"steps": [20, 50, 100], "hold_requests": 25, "max_latency_p99_ms": 150,
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


@pytest.mark.parametrize(("injector", "expect"), [(raising, "error rate"), (slow, "latency p99")])
def test_faulty_challenger_is_rolled_back(renv: REnv, injector: Any, expect: str) -> None:
    decision = run_canary(renv, renv.healthy, injector, rounds=3, per_round=60)
    assert decision.status == "rolled_back"
    assert expect in decision.reason
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"
    event = renv.store.events(model=MODEL, kind="rolled_back")[0]
    assert expect in event.reason and event.numbers["step"] == 1


def test_worse_challenger_is_rolled_back_on_divergence(renv: REnv) -> None:
    decision = run_canary(renv, renv.worse, rounds=3, per_round=60)
    assert decision.status == "rolled_back"
    assert "divergence" in decision.reason
    state, _ = load(renv.store, MODEL)
    assert state is not None and state.decision["numbers"]["divergence"] > 0.3
