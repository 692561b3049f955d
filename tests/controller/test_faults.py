"""Controller faults: a killed controller leaves no worker behind, a failing tick is one event.

* kill -9 of the controller process alone (not its process group) during a retrain: its
  training workers exit by themselves, the restarted controller marks the interrupted run
  ``failed``, and exactly one version exists for the retrain's idempotency key.
* a tick that fails (here: the champion's reference profile is gone) writes one
  ``tick_failed`` event with the real reason, however many ticks fail the same way, and the
  loop keeps ticking.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from controller_helpers import copy_project, kinds, serve_traffic, stream, window_of
from test_controller import TICK, _after, _wait_for_retraining

from modelpilot.controller import NAMESPACE
from modelpilot.pilot import Pilot


def test_kill_9_of_the_controller_leaves_no_orphan_and_trains_once(trained_project: Path, tmp_path: Path) -> None:
    path = copy_project(trained_project, tmp_path / "project", retraining={"tune": True},
                        tuning={"n_trials": 8, "parallel": 1})
    pilot = Pilot.from_config(path)
    try:
        serve_traffic(pilot, stream(400, 1000))
        proc = subprocess.Popen([sys.executable, "-c", TICK, str(path)], cwd=path.parent,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            running = _wait_for_retraining(pilot, proc, timeout=240)
            workers = psutil.Process(proc.pid).children(recursive=True)
            assert workers, "the retrain runs in a worker process"
            os.kill(proc.pid, signal.SIGKILL)  # the controller alone, as the OOM killer would
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        _, alive = psutil.wait_procs(workers, timeout=60)
        assert alive == [], f"training workers outlived their controller: {[p.pid for p in alive]}"
        state = pilot.store.get_state_record(NAMESPACE, "churn")
        assert state is not None and state.value["phase"] == "retraining"
        key = state.value["retrain"]["key"]
        assert pilot.store.find_version_by_key("churn", key) is None, "the retrain finished before the kill"

        result = pilot.controller(inline=True).tick()

        assert "retrain resumed" in result.actions, result.actions
        interrupted = pilot.store.get_run(running)
        assert interrupted.status == "failed" and "interrupted" in (interrupted.error or "")
        assert interrupted.tags["process"]["pid"] in {w.pid for w in workers}  # the worker trained it
        retrains = pilot.store.list_runs(model="churn", kind="retrain")
        assert sorted(r.status for r in retrains) == ["failed", "finished"]  # trained once more, not twice
        versions = pilot.store.list_versions("churn")
        assert [v.idempotency_key for v in versions].count(key) == 1 and len(versions) == 2
    finally:
        pilot.close()


def test_a_failing_tick_is_one_event_and_the_loop_keeps_ticking(make_pilot: Any) -> None:
    pilot = make_pilot()
    rows = stream(400, 600)
    ctl = pilot.controller(window=window_of(pilot, rows), inline=True)
    reference = pilot.store.get_version("churn", 1).reference_key
    stored = Path(pilot.cfg.artifacts_url) / reference
    saved = stored.read_bytes()
    stored.unlink()  # the champion's reference profile is gone: monitoring cannot run

    results = [ctl.tick(now=_after(rows)) for _ in range(3)]
    ctl.run(interval=0, max_ticks=2)  # the loop does not stop on it either

    assert all(r.error and reference in r.error for r in results), [r.error for r in results]
    (event,) = pilot.store.events(model="churn", kind="tick_failed")
    assert reference in event.reason and "next tick tries again" in event.reason
    state = pilot.store.get_state_record(NAMESPACE, "churn")
    assert state is not None and state.value["failing"]["ticks"] == 5
    assert kinds(pilot, "trigger_fired") == []

    stored.write_bytes(saved)  # fixed: the next tick monitors again and the streak ends
    healthy = ctl.tick(now=_after(rows))
    assert healthy.error is None and "monitored" in healthy.actions
    state = pilot.store.get_state_record(NAMESPACE, "churn")
    assert state is not None and "failing" not in state.value
    assert len(pilot.store.events(model="churn", kind="tick_failed")) == 1
