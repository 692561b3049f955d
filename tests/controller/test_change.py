"""The loop after a concept change: located within one batch, post-change rows only, no warm
start, a non-inferiority gate, then refreshes until the full window.

Traffic is fed batch by batch, as a server and its feedback would: each batch is scored by
the serving champion, its labels arrive at once (label delay 0) and the controller ticks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from controller_helpers import kinds, scored, stream

from modelpilot.controller.window import FrameWindow
from modelpilot.policy.triggers import TriggerState

BATCH = 500


class Feed:
    """Batches of a stream scored by whichever version is champion when they arrive."""

    def __init__(self, pilot: Any, rows: pd.DataFrame) -> None:
        self.pilot, self.rows, self.window, self.at = pilot, rows, FrameWindow(), 0
        self.ctl = pilot.controller(window=self.window, inline=True)

    def tick(self) -> Any:
        part = self.rows.iloc[self.at : self.at + BATCH]
        self.at += BATCH
        champion = self.pilot.store.get_alias("churn", "champion")
        self.window.append(scored(self.pilot, part, version=champion))
        return self.ctl.tick(now=part["ts"].max().to_pydatetime() + timedelta(seconds=1))


def _change(result: Any) -> dict[str, Any]:
    return next(d for d in result.decisions if d["name"] == "change")


def test_an_abrupt_change_is_located_in_one_batch_and_retrained_on_rows_after_it(make_pilot: Any) -> None:
    pilot = make_pilot(retraining={"recent_rows": 4000, "min_rows_after_change": 300, "history_fraction": 0.3},
                       triggers={"performance_drop": {"enabled": False}})
    rows = stream(1500, 3000, seed=4)
    feed = Feed(pilot, rows)
    calm = [feed.tick() for _ in range(3)]
    assert all(_change(r)["status"] == "quiet" for r in calm), [_change(r)["reason"] for r in calm]
    assert kinds(pilot, "retrain_started") == []

    first = feed.tick()  # the first batch of the new concept, labels in

    decision = _change(first)
    assert decision["status"] == "fired", decision["reason"]
    numbers = decision["numbers"]
    assert numbers["statistic"] > numbers["threshold"] and numbers["alpha"] == 0.001
    drift_start = rows["ts"].iloc[1500]
    assert abs(pd.Timestamp(numbers["since"]) - drift_start) <= (rows["ts"].iloc[1600] - drift_start)
    assert "rose from" in decision["reason"]
    # trained on post-change rows only: no history sample, no older traffic, no warm start
    info = first.retrain["info"]
    assert info["after_change"] and info["stale_champion"] and info["history_rows"] == 0
    assert info["recent_rows"] + info["holdout_rows"] <= BATCH + 100
    run = pilot.store.get_run(pilot.store.get_version("churn", first.retrain["version"]).run_id)
    assert run.tags["warm_start"]["used"] is False and run.tags["warm_start"]["reason"] == "no parent model given"
    # the gate asked "not worse?" on post-change rows, with its statistics in the event
    gate = first.gate
    assert gate is not None and gate["numbers"]["after_change"] and "non-inferiority" in gate["numbers"]["test"]
    assert gate["numbers"]["margin"] == -0.02 and gate["numbers"]["p_value"] is not None
    assert gate["passed"] and first.promoted == first.retrain["version"]  # promoted as not worse
    event = pilot.store.events(model="churn", kind="gate_passed")[0]
    assert event.numbers["test"] == gate["numbers"]["test"] and event.numbers["margin"] == -0.02
    # v1 learned the old concept: the references restart from the new champion's holdout score
    assert gate["numbers"]["champion_stale"] is True
    state = TriggerState.from_dict(pilot.store.get_state_record("controller", "churn").value["triggers"])
    assert state.reference is not None and state.reference.carried == 0
    assert state.reference.value == gate["numbers"]["challenger"]
    assert state.reference.how == f"v{first.promoted} holdout at promotion"


def test_refreshes_follow_the_post_change_rows_up_to_the_full_window(make_pilot: Any) -> None:
    pilot = make_pilot(retraining={"recent_rows": 2000, "min_rows_after_change": 300, "refresh_factor": 2.0},
                       triggers={"performance_drop": {"enabled": False}, "segment_performance_drop": {"enabled": False}})
    rows = stream(1000, 2500, seed=5)
    feed = Feed(pilot, rows)
    results = [feed.tick() for _ in range(len(rows) // BATCH)]

    retrains = [r.retrain["info"] for r in results if r.retrain is not None]
    read = [i["recent_rows"] + i["holdout_rows"] for i in retrains]
    # the first model on one batch after the change, then at 2x, then the full window
    assert read == [500, 1000, 2000], read
    assert all(i["after_change"] and i["history_rows"] == 0 for i in retrains)
    # every retrain after the change starts from scratch, refreshes included
    for r in results:
        if r.retrain is not None:
            run = pilot.store.get_run(pilot.store.get_version("churn", r.retrain["version"]).run_id)
            assert run.tags["warm_start"]["used"] is False, run.tags["warm_start"]
    # a refresh of a post-change champion is refused only when shown worse
    refreshes = [r for r in results if r.gate is not None and r.retrain["info"].get("refresh")]
    assert refreshes and all(r.gate["numbers"]["test"] == "bootstrap refresh" for r in refreshes)
    assert all(r.gate["numbers"]["champion_stale"] is False for r in refreshes)  # they carry the reference
    state = TriggerState.from_dict(pilot.store.get_state_record("controller", "churn").value["triggers"])
    assert state.change is not None and state.change.trained_rows == 2000
    fired = [_change(r)["reason"] for r in results if _change(r)["status"] == "fired"]
    assert len(fired) == 3 and "refresh" in fired[1] and "refresh" in fired[2]
    # promoted models kept the loop on the new concept: the last batches beat v1 on them
    assert pilot.store.get_alias("churn", "champion") > 1
    assert kinds(pilot, "retrain_started").count("retrain_started") == 3


def test_a_stationary_stream_locates_no_change(make_pilot: Any) -> None:
    pilot = make_pilot()
    feed = Feed(pilot, stream(4000, 0, seed=6))
    results = [feed.tick() for _ in range(8)]
    assert all(_change(r)["status"] in ("quiet",) for r in results)
    assert all(r.retrain is None for r in results)
    assert TriggerState.from_dict(pilot.store.get_state_record("controller", "churn").value["triggers"]).change is None
