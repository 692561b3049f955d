"""The controller's decisions through ``Controller.tick`` over a real store and artifacts.

A gate-passing candidate is parked when ``gates.human_approval`` is on; no retrain starts
while a progressive rollout is undecided; another controller's live lease is respected
(and a dead or expired one is not); badly performing segments are upsampled in the
retraining set; a failed retrain is recorded with its cause.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from controller_helpers import kinds, stream, window_of

from modelpilot.controller import NAMESPACE
from modelpilot.rollout import get_strategy, review
from modelpilot.rollout.state import active

RETRAIN_EVENTS = ("retrain_started", "retrain_resumed", "retrain_finished", "retrain_failed", "gate_passed",
                  "gate_rejected", "promoted")


def _after(rows: pd.DataFrame, minutes: float = 1.0) -> Any:
    return rows["ts"].max().to_pydatetime() + timedelta(minutes=minutes)


def test_human_approval_parks_the_candidate_instead_of_rolling_it_out(make_pilot: Any) -> None:
    pilot = make_pilot(gates={"human_approval": True})
    rows = stream(400, 1000)
    result = pilot.controller(window=window_of(pilot, rows), inline=True).tick(now=_after(rows))
    assert result.retrain is not None and result.gate is not None and result.gate["passed"]
    assert result.promoted is None and "v2 awaiting approval" in result.actions
    assert kinds(pilot, *RETRAIN_EVENTS) == ["retrain_started", "retrain_finished", "gate_passed"]
    assert pilot.store.get_version("churn", 2).status == "awaiting_approval"
    assert pilot.store.get_approval("churn", 2).status == "pending"
    assert pilot.store.get_alias("churn", "champion") == 1
    # a person approves: the configured strategy (replace) promotes it
    review.approve(pilot.store, pilot.cfg, "churn", 2, "alice", "looks right", artifacts=pilot.artifacts)
    assert pilot.store.get_alias("churn", "champion") == 2


def _second_version(pilot: Any) -> int:
    v1 = pilot.store.get_version("churn", 1)
    return int(pilot.store.register_version(
        "churn", run_id=None, artifact_key=v1.artifact_key, reference_key=v1.reference_key,
        signature=v1.signature, task=v1.task, classes=v1.classes, metrics=v1.metrics, lineage={},
    ).version)


def test_no_retrain_starts_while_a_rollout_is_undecided(make_pilot: Any) -> None:
    pilot = make_pilot(rollout={"strategy": "canary", "canary": {"hold_requests": 1000}})
    candidate = _second_version(pilot)
    get_strategy("canary", cfg=pilot.cfg, artifacts=pilot.artifacts).start(
        pilot.store, "churn", candidate, champion=1, reason="test", numbers={})
    rows = stream(400, 1000)
    ctl = pilot.controller(window=window_of(pilot, rows), inline=True)

    deferred = ctl.tick(now=_after(rows))

    assert "performance_drop" in [d["name"] for d in deferred.decisions if d["status"] == "fired"]
    assert deferred.retrain is None
    assert any("deferred" in a for a in deferred.actions), deferred.actions
    assert kinds(pilot, *RETRAIN_EVENTS) == []
    assert [v.version for v in pilot.store.list_versions("churn")] == [1, candidate]
    assert active(pilot.store, "churn") is not None
    state = pilot.store.get_state_record(NAMESPACE, "churn")
    assert state is not None and state.value["phase"] == "idle"

    review.rollback(pilot.store, "churn", "ops", "stop the canary")
    after = ctl.tick(now=_after(rows, minutes=121))  # past the trigger's cooldown: it fires again
    assert after.retrain is not None
    assert kinds(pilot, "retrain_started") == ["retrain_started"]


def _retraining_state(owner: str, lease_until: float) -> dict[str, Any]:
    return {"phase": "retraining", "retrain": {
        "key": "retrain:other", "reason": "performance drop", "champion": 1,
        "train_key": "frames/missing-train.parquet", "holdout_key": "frames/missing-holdout.parquet",
        "info": {}, "started_at": "2026-01-01T00:00:00+00:00", "owner": owner, "lease_until": lease_until,
    }}


def test_another_controllers_live_lease_is_left_alone(make_pilot: Any) -> None:
    pilot = make_pilot()
    for owner in ("another-host:4242:abcd", f"{socket.gethostname()}:{os.getpid()}:other"):
        record = pilot.store.get_state_record(NAMESPACE, "churn")
        pilot.store.put_state(NAMESPACE, "churn", _retraining_state(owner, time.time() + 300),
                              expected_revision=record.revision if record else 0)
        result = pilot.controller(inline=True).tick()
        assert "a retrain is in progress in another controller" in result.actions, result.actions
        assert kinds(pilot, *RETRAIN_EVENTS) == []
        state = pilot.store.get_state_record(NAMESPACE, "churn")
        assert state is not None and state.value["retrain"]["owner"] == owner


def test_an_expired_or_dead_owners_lease_is_taken_over_and_a_failure_keeps_its_reason(make_pilot: Any) -> None:
    pilot = make_pilot()
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{socket.gethostname()}:{done.stdout.strip()}:gone"
    for owner, lease_until in (("another-host:4242:abcd", time.time() - 1), (dead, time.time() + 300)):
        record = pilot.store.get_state_record(NAMESPACE, "churn")
        pilot.store.put_state(NAMESPACE, "churn", _retraining_state(owner, lease_until),
                              expected_revision=record.revision if record else 0)
        result = pilot.controller(inline=True).tick()
        assert "retrain resumed" in result.actions, result.actions
        failed = pilot.store.events(model="churn", kind="retrain_failed")[0]
        # the cause (the training data is gone) is in the event, not only "it failed"
        assert "missing-train.parquet" in failed.reason and "the champion keeps serving" in failed.reason
        assert failed.subject == "retrain:other"
        assert any(a.startswith("retrain failed: ") and "missing-train.parquet" in a for a in result.actions)
        state = pilot.store.get_state_record(NAMESPACE, "churn")
        assert state is not None and state.value["phase"] == "idle"
    assert kinds(pilot, "retrain_resumed", "retrain_failed") == ["retrain_resumed", "retrain_failed"] * 2
    assert pilot.store.get_alias("churn", "champion") == 1


def test_a_retrain_that_fails_validation_records_why(make_pilot: Any) -> None:
    pilot = make_pilot(data={"validation": {"class_balance": {"min_fraction": 0.5}}})
    rows = stream(400, 1000)
    result = pilot.controller(window=window_of(pilot, rows), inline=True).tick(now=_after(rows))
    # the retraining set is checked before a retrain starts: blocked, nothing trained
    assert kinds(pilot, *RETRAIN_EVENTS, "retrain_blocked") == ["retrain_blocked"]
    failed = pilot.store.events(model="churn", kind="retrain_blocked")[0]
    assert "class_balance" in failed.reason and "min 50.0%" in failed.reason, failed.reason
    assert failed.numbers["checks"] == ["class_balance"]
    assert failed.reason.endswith("the champion keeps serving")
    assert pilot.store.list_runs(model="churn", kind="retrain") == []
    assert result.promoted is None and [v.version for v in pilot.store.list_versions("churn")] == [1]


def test_badly_performing_segments_are_upsampled_in_the_retraining_set(make_pilot: Any) -> None:
    pilot = make_pilot(triggers={"schedule": "* * * * *"},
                       retraining={"change_point": False, "upsample_factor": 3.0})
    rows = stream(1000, 0, seed=4)
    ctl = pilot.controller(window=window_of(pilot, rows), inline=True)
    ctl.tick(now=_after(rows))  # the schedule starts counting
    # labels in the north are flipped for half its rows: the champion does badly there only
    north = np.flatnonzero((rows["region"] == rows["region"].iloc[0]).to_numpy())
    flipped = rows.copy()
    flipped.loc[north[::2], "churned"] = 1 - flipped.loc[north[::2], "churned"]
    ctl.window = window_of(pilot, flipped)
    result = ctl.tick(now=_after(rows, minutes=3))
    assert result.retrain is not None
    started = pilot.store.events(model="churn", kind="retrain_started")[0]
    segment = f"region={rows['region'].iloc[0]}"
    assert list(started.numbers["upsampled"]) == [segment], started.numbers
    assert started.numbers["upsampled"][segment] > 0
