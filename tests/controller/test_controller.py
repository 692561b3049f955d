"""The controller's tick over real parts: triggers, retrain, gate, promotion, resumption.

Each test trains a real v1 on the churn history, feeds the controller traffic scored by it
(a :class:`FrameWindow`, or the real prediction log written by the real server) and reads
the outcome back from the store: aliases, versions, runs, the state and the audit log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from controller_helpers import copy_project, kinds, scored, serve_traffic, stream, window_of

from modelpilot.controller import NAMESPACE
from modelpilot.controller.data import FEATURE_PREFIX
from modelpilot.controller.monitor import validation_segments
from modelpilot.controller.window import FrameWindow
from modelpilot.pilot import Pilot
from modelpilot.serving import create_app, start_in_thread
from modelpilot.store import StateRecord

RETRAIN_EVENTS = ("retrain_started", "retrain_resumed", "retrain_finished", "gate_passed", "gate_rejected", "promoted")


def _after(rows: pd.DataFrame, minutes: float = 1.0) -> Any:
    return rows["ts"].max().to_pydatetime() + timedelta(minutes=minutes)


def _fired(result: Any) -> list[str]:
    return [d["name"] for d in result.decisions if d["status"] == "fired"]


def test_performance_drop_fires_retrains_and_promotes(make_pilot: Any) -> None:
    pilot = make_pilot()
    rows = stream(400, 1000)
    ctl = pilot.controller(window=window_of(pilot, rows), inline=True)

    result = ctl.tick(now=_after(rows))

    assert "performance_drop" in _fired(result)
    assert result.promoted == 2
    assert pilot.store.get_alias("churn", "champion") == 2
    assert kinds(pilot, *RETRAIN_EVENTS) == ["retrain_started", "retrain_finished", "gate_passed", "promoted"]
    started = pilot.store.events(model="churn", kind="retrain_started")[0]
    assert "below the reference" in started.reason and "accuracy" in started.reason
    v2 = pilot.store.get_version("churn", 2)
    assert v2.lineage["parent_version"] == 1 and v2.idempotency_key == started.subject
    assert result.gate is not None and result.gate["numbers"]["challenger"] > result.gate["numbers"]["champion"]
    state = pilot.store.get_state_record(NAMESPACE, "churn")
    assert state is not None and state.value["phase"] == "idle"


def test_stationary_window_does_not_fire(make_pilot: Any) -> None:
    pilot = make_pilot()
    rows = stream(1000, 0)
    ctl = pilot.controller(window=window_of(pilot, rows), inline=True)

    result = ctl.tick(now=_after(rows))

    assert result.summary is not None and result.summary["n_labelled"] == 600
    perf = {d["name"]: d for d in result.decisions}["performance_drop"]
    assert perf["value"] is not None and perf["value"] < perf["threshold"]  # measured, and under it
    assert _fired(result) == []
    assert kinds(pilot, *RETRAIN_EVENTS, "trigger_fired") == []
    assert [v.version for v in pilot.store.list_versions("churn")] == [1]
    assert pilot.store.get_alias("churn", "champion") == 1


def test_worse_challenger_is_rejected_and_the_champion_keeps_serving(make_pilot: Any) -> None:
    # a scheduled retrain on stationary traffic, from 80 recent rows only: a worse model
    pilot = make_pilot(
        triggers={"schedule": "* * * * *"},
        retraining={"recent_rows": 400, "holdout_fraction": 0.8, "history_fraction": 0.0,
                    "include_source": False, "change_point": False, "warm_start": False},
    )
    rows = stream(1000, 0, seed=3)
    ctl = pilot.controller(window=window_of(pilot, rows), inline=True)
    assert _fired(ctl.tick(now=_after(rows))) == []  # the schedule starts counting

    app = create_app(pilot.cfg, pilot.store, pilot.artifacts)
    server, base = start_in_thread(app)
    url = f"{base}/v1/models/churn"
    names = [f["name"] for f in pilot.store.get_version("churn", 1).signature]
    body = {"instances": rows[names].head(20).astype(object).where(rows[names].head(20).notna(), None).to_dict("records")}
    answers: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                r = client.post(f"{url}/predict", json=body)
                answers.append((r.status_code, r.json().get("model_version")))

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        result = ctl.tick(now=_after(rows, minutes=3))
        time.sleep(5 * pilot.cfg.serving.refresh_interval)  # a swap would have happened by now
        stop.set()
        sender.join()
        with httpx.Client(timeout=30) as client:
            after = client.post(f"{url}/predict", json=body)
            info = client.get(url).json()
    finally:
        stop.set()
        server.stop()

    assert "schedule" in _fired(result)
    assert result.retrain is not None and result.retrain["version"] == 2
    assert result.gate is not None and not result.gate["passed"]
    assert result.gate["numbers"]["challenger"] < result.gate["numbers"]["champion"]
    assert result.promoted is None
    assert kinds(pilot, *RETRAIN_EVENTS) == ["retrain_started", "retrain_finished", "gate_rejected"]
    rejected = pilot.store.events(model="churn", kind="gate_rejected")[0]
    assert rejected.subject == "v2" and "v1 keeps serving" in rejected.reason
    assert pilot.store.get_version("churn", 2).status == "rejected"
    assert pilot.store.get_alias("churn", "champion") == 1
    assert len(answers) > 5 and set(answers) == {(200, 1)}, set(answers)
    assert after.status_code == 200 and after.json()["model_version"] == 1
    assert info["champion"] == 1


def _capture_retraining_state(pilot: Any, found: list[StateRecord], stop: threading.Event) -> None:
    while not stop.is_set() and not found:
        rec = pilot.store.get_state_record(NAMESPACE, "churn")
        if rec is not None and rec.value.get("phase") == "retraining":
            found.append(rec)
        time.sleep(0.005)


def test_resuming_the_retraining_phase_registers_no_duplicate_version(make_pilot: Any) -> None:
    pilot = make_pilot()
    rows = stream(400, 1000)
    ctl = pilot.controller(window=window_of(pilot, rows), inline=True)
    found: list[StateRecord] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_capture_retraining_state, args=(pilot, found, stop))
    watcher.start()
    try:
        first = ctl.tick(now=_after(rows))
    finally:
        stop.set()
        watcher.join()
    assert first.promoted == 2 and found, "the tick never wrote the retraining phase"
    key = found[0].value["retrain"]["key"]

    # a crash after the version was registered and before the rollout: the store holds the
    # retraining phase again and the alias has not moved yet
    pilot.store.set_alias("churn", "champion", 1, reason="test: the rollout never happened")
    current = pilot.store.get_state_record(NAMESPACE, "churn")
    assert current is not None
    pilot.store.put_state(NAMESPACE, "churn", found[0].value, expected_revision=current.revision)

    second = ctl.tick(now=_after(rows))

    assert "retrain resumed" in second.actions
    assert [v.version for v in pilot.store.list_versions("churn")] == [1, 2]
    assert pilot.store.find_version_by_key("churn", key).version == 2  # type: ignore[union-attr]
    assert len(pilot.store.list_runs(model="churn", kind="retrain")) == 1  # nothing trained again
    assert second.promoted == 2 and pilot.store.get_alias("churn", "champion") == 2
    assert kinds(pilot, "gate_passed").count("gate_passed") == 2  # the gate decided again
    state = pilot.store.get_state_record(NAMESPACE, "churn")
    assert state is not None and state.value["phase"] == "idle"

    third = ctl.tick(now=_after(rows))  # and once more, from idle: nothing new
    assert third.retrain is None
    assert [v.version for v in pilot.store.list_versions("churn")] == [1, 2]



TICK = "import sys; from modelpilot.pilot import Pilot; print(Pilot.from_config(sys.argv[1]).tick())"


def test_kill_9_during_a_retrain_then_a_clean_resume(trained_project: Path, tmp_path: Path) -> None:
    # tuning the retrain makes it last long enough to be killed in the middle
    path = copy_project(trained_project, tmp_path / "project", retraining={"tune": True},
                        tuning={"n_trials": 6, "parallel": 1})
    pilot = Pilot.from_config(path)
    try:
        serve_traffic(pilot, stream(400, 1000))
        proc = subprocess.Popen(
            [sys.executable, "-c", TICK, str(path)], cwd=path.parent, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            running = _wait_for_retraining(pilot, proc)
        finally:
            # the controller and its worker processes die at once, as in a machine crash
            for kill in (os.kill, os.killpg):
                with contextlib.suppress(ProcessLookupError):
                    kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
        state = pilot.store.get_state_record(NAMESPACE, "churn")
        assert state is not None and state.value["phase"] == "retraining"
        key = state.value["retrain"]["key"]
        assert pilot.store.find_version_by_key("churn", key) is None, "the retrain finished before the kill"

        resumed_at = time.monotonic()
        result = pilot.controller(inline=True).tick()

        assert time.monotonic() - resumed_at < 60  # not held back by the dead controller's lease
        assert "retrain resumed" in result.actions, result.actions
        interrupted = pilot.store.get_run(running)
        assert interrupted.status == "failed" and "interrupted" in (interrupted.error or "")
        versions = pilot.store.list_versions("churn")
        assert [v.version for v in versions] == [1, 2]
        assert [v.idempotency_key for v in versions].count(key) == 1
        assert result.gate is not None
        assert kinds(pilot, *RETRAIN_EVENTS)[:3] == ["retrain_started", "retrain_resumed", "retrain_finished"]
        assert kinds(pilot, "gate_passed", "gate_rejected") in (["gate_passed"], ["gate_rejected"])
        state = pilot.store.get_state_record(NAMESPACE, "churn")
        assert state is not None and state.value["phase"] == "idle"
    finally:
        pilot.close()


def _wait_for_retraining(pilot: Any, proc: subprocess.Popen[str], timeout: float = 60.0) -> int:
    """Poll the store until the subprocess is retraining with a run open; returns the run id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the tick ended before it was killed:\n{proc.communicate()[0]}")
        rec = pilot.store.get_state_record(NAMESPACE, "churn")
        runs = pilot.store.list_runs(model="churn", status="running", kind="retrain")
        if rec is not None and rec.value.get("phase") == "retraining" and runs:
            return runs[0].id
        time.sleep(0.05)
    raise AssertionError("the subprocess never reached the retraining phase")


def test_segment_drift_that_began_before_the_first_tick_is_measured_against_validation(make_pilot: Any) -> None:
    # one region is already degraded when the controller first looks: its reference must be
    # v1's validation accuracy there, not the degraded first window ("0.0000 below")
    pilot = make_pilot(budget={"max_retrains": 0},  # read the decisions, retrain nothing
                       triggers={"performance_drop": {"threshold": 0.5, "min_samples": 200, "cooldown": "1h"}})
    rows = stream(1000, 0)
    log = scored(pilot, rows)
    flip = (log[FEATURE_PREFIX + "region"] == "north").to_numpy() & (np.arange(len(log)) % 2 == 0)
    log.loc[flip, "label"] = np.where(log.loc[flip, "label"] == "1", "0", "1")
    window = FrameWindow()
    window.append(log)
    ctl = pilot.controller(window=window, inline=True)

    result = ctl.tick(now=_after(rows))

    seg = {d["name"]: d for d in result.decisions}["segment_performance_drop"]
    validation = validation_segments(pilot.store, pilot.store.get_version("churn", 1), "accuracy")
    assert validation["region=north"] > 0.6
    north_row = seg["numbers"]["segments"]["region=north"]
    assert north_row["reference"] == pytest.approx(validation["region=north"])
    assert north_row["drop"] > 0.2 and seg["numbers"]["segment"] == "region=north"
    assert seg["value"] >= seg["threshold"] and seg["status"] != "quiet"
    state = pilot.store.get_state_record(NAMESPACE, "churn")
    assert state is not None
    assert state.value["triggers"]["segment_references"]["region=north"]["how"] == "v1 validation"
