"""The controller on the two-node Ray cluster: a retrain whose worker is killed fails alone,
the controller records the failed run and goes on, and no version is registered twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from controller_helpers import kinds, stream, window_of

from modelpilot.controller import TickResult
from modelpilot.store import Store

pytestmark = pytest.mark.slow


def test_a_killed_retrain_worker_is_a_failed_run_and_the_next_retrain_registers_once(
    make_pilot: Any, ray_address: str
) -> None:
    pilot = make_pilot(executor={"kind": "ray", "address": ray_address, "workers": 1})
    rows = stream(400, 1000)
    ctl = pilot.controller(window=window_of(pilot, rows))  # not inline: the retrain runs on Ray
    now = rows["ts"].max().to_pydatetime() + timedelta(minutes=1)
    results: list[TickResult] = []
    ticking = threading.Thread(target=lambda: results.append(ctl.tick(now=now)))
    ticking.start()
    killed = None
    with Store.open(pilot.cfg.store_url) as watch:
        deadline = time.monotonic() + 180
        while killed is None and ticking.is_alive():
            assert time.monotonic() < deadline, "the retrain never started"
            for run in watch.list_runs(model="churn", status="running", kind="retrain"):
                killed = run
                os.kill(run.tags["process"]["pid"], signal.SIGKILL)  # the Ray worker training it
            time.sleep(0.05)
    ticking.join(180)
    assert killed is not None and killed.tags["process"]["pid"] != os.getpid()
    (first,) = results
    assert first.retrain is None and any(a.startswith("retrain failed") for a in first.actions), first.actions
    assert kinds(pilot, "retrain_started", "retrain_failed") == ["retrain_started", "retrain_failed"]
    run = pilot.store.get_run(killed.id)
    assert run.status == "failed" and "worker" in (run.error or "")
    assert [v.version for v in pilot.store.list_versions("churn")] == [1]  # Ray did not retry it
    assert pilot.store.get_alias("churn", "champion") == 1

    # the controller goes on: the next retrain runs on the cluster and registers one version
    second = ctl.tick(now=now + timedelta(minutes=1), force_retrain_reason="retry after the lost worker")
    assert second.retrain is not None and second.retrain["version"] == 2
    versions = pilot.store.list_versions("churn")
    assert [v.version for v in versions] == [1, 2]
    # a new retrain (a new key): the failure was saved, so the killed job was not resumed
    assert versions[1].idempotency_key == second.retrain["key"] != killed.tags["process"]["idempotency_key"]
    assert pilot.store.find_version_by_key("churn", killed.tags["process"]["idempotency_key"]) is None
    assert kinds(pilot, "retrain_resumed") == []
