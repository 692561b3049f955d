"""The phases' own decisions, called directly on plain data and real processes (no training).

* decide: a retrain waiting for rows stays due for one cooldown of the performance rule, in
  labelled rows or in time as the cooldown is given, then the triggers decide afresh;
* monitor: the row clock reads as many labelled rows as the longest wait in rows needs;
* retrain: which segments count as bad (in the metric's direction); a lease is taken over
  only from a dead or expired owner; a worker left by a stopped controller is killed, but
  never one of our own and never a process that got the pid after the run started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
import pytest

from modelpilot.config import PilotConfig
from modelpilot.controller.decide import retrain_due
from modelpilot.controller.monitor import rows_needed
from modelpilot.controller.retrain import (
    LEASE_SECONDS,
    bad_segments,
    owner_gone,
    stop_worker,
    take_over,
)
from modelpilot.policy.trigger_state import RowClock, TriggerOutcome, TriggerState
from modelpilot.policy.triggers import DYNAMIC_RULES

T0 = datetime(2024, 5, 1, tzinfo=UTC)
HOST = socket.gethostname()


def cfg_with(**sections: Any) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}, **sections})


def quiet() -> TriggerOutcome:
    return TriggerOutcome(decisions=[], retrain=False, reason="no trigger fired", new_state=TriggerState())


def rows_after(when: datetime, n: int) -> RowClock:
    return RowClock.of([when - timedelta(seconds=1)] + [when + timedelta(seconds=k + 1) for k in range(n)])


# --------------------------------------------------------------------------- decide


def test_a_wait_for_rows_lasts_one_row_cooldown_then_the_triggers_decide_afresh() -> None:
    cfg = cfg_with(triggers={"performance_drop": {"cooldown_rows": 500}})
    state: dict[str, Any] = {"waiting": {"reason": "accuracy fell", "since": T0.isoformat()}}
    later = T0 + timedelta(days=400)  # the clock does not matter, the rows do
    assert retrain_due(cfg, state, quiet(), later, rows_after(T0, 500)) == "accuracy fell"
    assert "waiting" in state  # exactly one cooldown of rows: still waiting
    assert retrain_due(cfg, state, quiet(), later, rows_after(T0, 501)) is None
    assert "waiting" not in state
    fired = TriggerOutcome(decisions=[], retrain=True, reason="change fired", new_state=TriggerState())
    assert retrain_due(cfg, {}, fired, later, None) == "change fired"  # a firing wins over no wait
    assert retrain_due(cfg, {}, quiet(), later, None) is None


def test_a_wait_in_time_lasts_one_time_cooldown_whatever_the_rows() -> None:
    cfg = cfg_with(triggers={"performance_drop": {"cooldown": "1h"}})
    state: dict[str, Any] = {"waiting": {"reason": "accuracy fell", "since": T0.isoformat()}}
    many = rows_after(T0, 50_000)
    assert retrain_due(cfg, state, quiet(), T0 + timedelta(hours=1), many) == "accuracy fell"
    assert retrain_due(cfg, state, quiet(), T0 + timedelta(hours=1, seconds=1), many) is None


def test_the_row_clock_reads_as_far_back_as_the_longest_wait_in_rows() -> None:
    assert rows_needed(cfg_with()) == 50_000  # the budget's period is the longest default wait
    timed_budget = cfg_with(budget={"period": "7d"}, triggers={"segment_performance_drop": {"cooldown_rows": 3000}})
    assert rows_needed(timed_budget) == 3000
    all_in_time = cfg_with(budget={"period": "7d"}, triggers={
        r: {"cooldown": "1h"} for r in DYNAMIC_RULES})
    assert rows_needed(all_in_time) == 0


# --------------------------------------------------------------------------- retrain: the data


@pytest.mark.parametrize(("metric", "threshold", "overall", "segments", "bad"), [
    # accuracy: higher is better; a segment is bad more than half the segment threshold below
    ("accuracy", 0.08, 0.80, {"region=north": 0.75, "region=south": 0.761, "plan=basic": 0.79}, [("region", "north")]),
    # half of 0.25 is 0.125, exact in binary: exactly half the threshold below is not clearly worse
    ("accuracy", 0.25, 0.75, {"region=north": 0.625, "region=south": 0.6249}, [("region", "south")]),
    # rmse: lower is better, a segment is bad when its error is higher
    ("rmse", 0.08, 1.00, {"region=north": 1.05, "region=south": 0.90}, [("region", "north")]),
])
def test_bad_segments_are_those_clearly_worse_in_the_metrics_direction(
        metric: str, threshold: float, overall: float, segments: dict[str, float], bad: list[tuple[str, str]]) -> None:
    cfg = cfg_with(evaluation={"metric": metric}, triggers={"segment_performance_drop": {"threshold": threshold}})
    summary = {"performance": overall, "segment_performance": {k: {"value": v, "n": 300} for k, v in segments.items()}}
    assert bad_segments(cfg, summary) == bad
    assert bad_segments(cfg, {"performance": None, "segment_performance": summary["segment_performance"]}) == []


# --------------------------------------------------------------------------- retrain: the lease


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_lease_is_taken_over_only_from_a_dead_or_expired_owner() -> None:
    me, live = f"{HOST}:{os.getpid()}:mine", f"{HOST}:{os.getppid()}:other"
    held = {"owner": live, "lease_until": time.time() + LEASE_SECONDS}
    assert not take_over(held, me) and held["owner"] == live  # a live controller keeps its job
    remote = {"owner": "elsewhere.example:1:x", "lease_until": time.time() + LEASE_SECONDS}
    assert not take_over(remote, me)  # another host is trusted until its lease expires
    expired = {"owner": "elsewhere.example:1:x", "lease_until": time.time() - 1}
    assert take_over(expired, me) and expired["owner"] == me and expired["lease_until"] > time.time()
    dead = {"owner": f"{HOST}:{_dead_pid()}:gone", "lease_until": time.time() + LEASE_SECONDS}
    assert take_over(dead, me) and dead["owner"] == me
    own = {"owner": me, "lease_until": time.time() + LEASE_SECONDS}
    assert take_over(own, me)  # a controller resumes its own job


def test_owner_gone_only_for_a_dead_process_on_this_host() -> None:
    assert owner_gone(f"{HOST}:{_dead_pid()}:x")
    assert not owner_gone(f"{HOST}:{os.getpid()}:x")
    assert not owner_gone(f"elsewhere.example:{_dead_pid()}:x")
    assert not owner_gone(None) and not owner_gone(f"{HOST}:not-a-pid:x")


def _orphan() -> psutil.Process:
    """A ``sleep`` that is not our child (its shell exits at once), as a dead controller's worker is."""
    out = subprocess.run(["sh", "-c", "sleep 120 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True,
                         check=True, timeout=30)
    proc = psutil.Process(int(out.stdout.strip()))
    assert proc.ppid() != os.getpid()
    return proc


def test_a_left_worker_is_killed_but_never_a_process_that_got_its_pid_later() -> None:
    worker = _orphan()
    try:
        started_before = datetime.fromtimestamp(worker.create_time() - 60, UTC)
        stop_worker({"host": HOST, "pid": worker.pid}, started_before)  # the pid was reused after the run began
        assert worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE
        stop_worker({"host": "elsewhere.example", "pid": worker.pid}, datetime.now(UTC))  # not ours to kill
        stop_worker({"host": HOST, "pid": str(worker.pid)}, datetime.now(UTC))  # malformed record
        stop_worker(None, datetime.now(UTC))
        assert worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE

        stop_worker({"host": HOST, "pid": worker.pid}, datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1))
        assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    finally:
        if worker.is_running():
            worker.kill()


def test_our_own_workers_are_never_killed_as_leftovers() -> None:
    child = subprocess.Popen(["sleep", "120"])
    try:
        stop_worker({"host": HOST, "pid": child.pid}, datetime.now(UTC) + timedelta(minutes=1))
        stop_worker({"host": HOST, "pid": os.getpid()}, datetime.now(UTC) + timedelta(minutes=1))
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
