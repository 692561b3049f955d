"""How a progressive rollout ends when something else moved first, over a real store.

A new rollout supersedes the one in progress; a champion moved by an operator outside the
rollout ends it as ``superseded``; a promotion that loses the race for the champion alias
(compare-and-set) is ``superseded`` too and the champion stays where the other actor put it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.errors import ConfigError
from modelpilot.rollout import get_strategy
from modelpilot.rollout import state as st
from modelpilot.rollout.progressive import CHALLENGER_ALIAS, outcomes

MODEL = "churn"
NOW = datetime(2024, 3, 1, tzinfo=UTC)


def _events(renv: Any, kind: str) -> list[Any]:
    return [e for e in reversed(renv.store.events(model=MODEL, limit=1000)) if e.kind == kind]


def test_a_new_rollout_supersedes_the_one_in_progress(renv: Any) -> None:
    canary = get_strategy("canary", cfg=renv.cfg, artifacts=renv.artifacts)
    canary.start(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="first", numbers={}, now=NOW)
    assert renv.store.get_alias(MODEL, CHALLENGER_ALIAS) == renv.healthy

    canary.start(renv.store, MODEL, renv.worse, champion=renv.champion, reason="second", numbers={}, now=NOW)

    current = st.active(renv.store, MODEL)
    assert current is not None and current.candidate == renv.worse
    assert renv.store.get_alias(MODEL, CHALLENGER_ALIAS) == renv.worse
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    started = [e.subject for e in _events(renv, "rollout_started")]
    assert started == [f"v{renv.healthy}", f"v{renv.worse}"]


def test_a_champion_moved_outside_the_rollout_ends_it_superseded(renv: Any) -> None:
    ab = get_strategy("ab", cfg=renv.cfg, artifacts=renv.artifacts)
    ab.start(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain", numbers={}, now=NOW)
    renv.store.set_alias(MODEL, "champion", renv.worse, actor="ops", reason="pinned by hand")

    decision = ab.advance(renv.store, MODEL, now=NOW)

    assert decision is not None and decision.status == "superseded"
    assert f"the champion moved to v{renv.worse} outside the rollout" in decision.reason
    assert st.active(renv.store, MODEL) is None
    assert renv.store.get_alias(MODEL, CHALLENGER_ALIAS) is None  # no traffic to the candidate any more
    assert renv.store.get_alias(MODEL, "champion") == renv.worse  # the operator's choice stands
    assert renv.store.get_version(MODEL, renv.healthy).status != "rejected"  # not judged, only overtaken
    assert [e.subject for e in _events(renv, "rollout_superseded")] == [f"v{renv.healthy}"]
    assert ab.advance(renv.store, MODEL, now=NOW) is None  # nothing left to decide


def test_a_promotion_that_loses_the_race_for_the_champion_is_superseded(renv: Any) -> None:
    shadow = get_strategy("shadow", cfg=renv.cfg, artifacts=renv.artifacts)
    shadow.start(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain", numbers={}, now=NOW)
    state, revision = st.load(renv.store, MODEL)
    assert state is not None
    # between reading the rollout and concluding it, another actor moves the champion
    renv.store.set_alias(MODEL, "champion", renv.worse, actor="ops", reason="emergency")

    decision = shadow.conclude(renv.store, state, revision, "promoted", "shadow metric better", {"delta": 0.02}, NOW)

    assert decision.status == "superseded"
    assert decision.reason == f"v{renv.healthy} was not promoted: the champion moved to v{renv.worse} meanwhile"
    assert renv.store.get_alias(MODEL, "champion") == renv.worse
    stored, _ = st.load(renv.store, MODEL)
    assert stored is not None and stored.status == "superseded" and not stored.active
    superseded = _events(renv, "rollout_superseded")
    assert len(superseded) == 1 and superseded[0].numbers["delta"] == 0.02
    assert _events(renv, "promoted") == []


def test_a_progressive_strategy_without_its_parts_says_which_to_pass(renv: Any) -> None:
    with pytest.raises(ConfigError, match=r"get_strategy\(name, cfg=cfg\)"):
        get_strategy("canary").start(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="r", numbers={})
    with pytest.raises(ConfigError, match="pass artifacts= to get_strategy"):
        get_strategy("ab", cfg=renv.cfg).rows(MODEL, None, None)
    with pytest.raises(ConfigError, match="unknown strategy 'blue-green'; choose one of ab, canary, replace, shadow"):
        get_strategy("blue-green")


def test_per_row_outcomes_are_larger_when_better_for_every_task() -> None:
    rows = pd.DataFrame({"prediction": ["1", "0", "1"], "label": ["1", "1", "1"]})
    assert outcomes(rows, "classification", "accuracy").tolist() == [1.0, 0.0, 1.0]
    reg = pd.DataFrame({"prediction": [1.0, 4.0], "label": [2.0, 1.0]})
    assert outcomes(reg, "regression", "mae").tolist() == [-1.0, -3.0]
    assert outcomes(reg, "regression", "rmse").tolist() == [-1.0, -9.0]
    assert np.isnan(outcomes(pd.DataFrame({"prediction": [1.0], "label": ["n/a"]}), "regression", "mae")[0])
