"""Shadow and A/B over real HTTP traffic against running servers."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from rollout_helpers import MODEL, REnv, send, serve, traffic, versions_of
from scipy import stats as sps

from modelpilot.rollout.state import load
from modelpilot.serving.cache import Prediction
from modelpilot.serving.logreader import PredictionLogReader


def raising(model: Any, columns: dict[str, np.ndarray]) -> Prediction | None:
    if model.version != 1:
        raise RuntimeError("challenger exploded")
    return None


def slow(model: Any, columns: dict[str, np.ndarray]) -> Prediction | None:
    if model.version != 1:
        time.sleep(0.5)
    return None


def garbage(model: Any, columns: dict[str, np.ndarray]) -> Prediction | None:
    if model.version != 1:
        n = len(next(iter(columns.values())))
        return Prediction(np.array(["x"] * (n + 1), dtype=object), np.full(n, np.nan), np.full((n, 2), np.nan))
    return None


def test_shadow_never_changes_responses(renv: REnv) -> None:
    rows = traffic(40, seed=3)
    with serve(renv) as alone:  # the champion alone: the reference answers
        expected = send(alone, rows, batch=4, labels=False)
    renv.configure({"strategy": "shadow"})
    renv.start("shadow", renv.healthy)
    for injector in (None, raising, slow, garbage):
        with serve(renv, injector) as server:
            server.wait_refreshed()
            assert server.app.state.cache.rollout(MODEL) is not None
            t0 = time.perf_counter()
            got = send(server, rows, batch=4, labels=False)
            elapsed = time.perf_counter() - t0
            for a, b in zip(expected, got, strict=True):
                assert (a["predictions"], a["probabilities"], a["model_version"]) == \
                    (b["predictions"], b["probabilities"], b["model_version"])
            if injector is slow:  # 10 requests, each challenger copy sleeps 0.5 s: nobody waited
                assert elapsed < 2.5
            server.flush()
            shadow = server.app.state.shadow
            if injector in (raising, garbage):
                assert shadow.failed >= 10 and shadow.scored == 0
            elif injector is None:
                assert shadow.scored == 40
    log = PredictionLogReader(renv.artifacts, MODEL)
    roles = log.predictions(role=None)["role"].value_counts().to_dict()
    log.close()
    assert roles["primary"] == 5 * 40 and roles["shadow"] >= 40 and roles["error"] >= 40


def test_shadow_decides_with_the_gate_comparison_on_labelled_traffic(renv: REnv) -> None:
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": 150}}, gates={"n_bootstrap": 200})
    renv.start("shadow", renv.worse)
    with serve(renv) as server:
        server.wait_refreshed()
        send(server, traffic(100, seed=1), batch=10)
        server.flush()
        assert renv.advance().status == "in_progress"
        send(server, traffic(100, seed=2), batch=10)
        server.flush()
        decision = renv.advance()
    assert decision.status == "rejected", decision.reason
    assert decision.numbers["pairs"] >= 150 and decision.numbers["delta"] < 0
    assert renv.store.get_alias(MODEL, "champion") == renv.champion


def test_ab_split_is_within_tolerance_and_sticky(renv: REnv) -> None:
    renv.configure({"strategy": "ab", "ab": {"share": 0.3}})
    renv.start("ab", renv.healthy)
    rows = traffic(400, seed=4)
    with serve(renv) as server:
        server.wait_refreshed()
        first = versions_of(send(server, rows, labels=False))
        again = versions_of(send(server, rows.sample(frac=1.0, random_state=1), labels=False))
    n_chal = int((first == renv.healthy).sum())
    assert set(first) == {renv.champion, renv.healthy}
    assert sps.binomtest(n_chal, len(rows), 0.3).pvalue > 0.001
    by_id = dict(zip(rows["id"], first, strict=True))
    shuffled = rows.sample(frac=1.0, random_state=1)["id"]
    assert [by_id[i] for i in shuffled] == again.tolist()


def test_ab_key_field_makes_assignment_sticky_per_customer(renv: REnv) -> None:
    renv.configure({"strategy": "ab", "key_field": "region", "ab": {"share": 0.5}})
    renv.start("ab", renv.healthy)
    rows = traffic(120, seed=5)
    with serve(renv) as server:
        server.wait_refreshed()
        got = versions_of(send(server, rows, labels=False))
    per_region = {r: set(got[(rows["region"] == r).to_numpy()]) for r in rows["region"].unique()}
    assert all(len(v) == 1 for v in per_region.values())


def test_ab_rejects_a_worse_challenger_with_effect_and_interval(renv: REnv) -> None:
    renv.configure({"strategy": "ab", "ab": {"share": 0.5, "min_detectable_effect": 0.15}})
    renv.start("ab", renv.worse)
    with serve(renv) as server:
        server.wait_refreshed()
        decision = None
        for r in range(6):
            send(server, traffic(100, seed=10 + r), batch=5)
            server.flush()
            decision = renv.advance()
            if decision.status != "in_progress":
                break
    assert decision is not None and decision.status == "rejected", decision and decision.reason
    assert decision.numbers["effect"] < 0 and decision.numbers["ci_high"] < 0
    assert "two_proportion_z" in decision.reason
    state, _ = load(renv.store, MODEL)
    assert state is not None and state.arms["challenger"]["labelled"] >= decision.numbers["n_required"]


@pytest.mark.parametrize("injector", [raising, garbage])
def test_ab_rolls_back_a_failing_challenger_and_callers_still_get_answers(renv: REnv, injector: Any) -> None:
    renv.configure({"strategy": "ab", "ab": {"share": 0.5}})
    renv.start("ab", renv.healthy)
    with serve(renv, injector) as server:
        server.wait_refreshed()
        answers = send(server, traffic(60, seed=6), labels=False)
        server.flush()
        decision = renv.advance()
    assert set(versions_of(answers)) == {renv.champion}  # the champion answered the failed rows
    assert decision.status == "rolled_back" and "error rate" in decision.reason
