"""The controller says what it did: timeline lines as decisions are made, and ``events``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from controller_helpers import copy_project, serve_traffic, stream

from modelpilot.pilot import Pilot

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelpilot.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=900, check=False)



def test_controller_once_prints_each_decision_and_the_truth(trained_project: Path, tmp_path: Path) -> None:
    config = copy_project(trained_project, tmp_path / "project")
    with Pilot.from_config(config) as pilot:
        serve_traffic(pilot, stream(400, 1000))

    done = cli("controller", "--once", "-c", str(config), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    # one timeline line per decision, in the order they were made (the demo's format)
    lines = [ln.split()[2] for ln in done.stderr.splitlines() if ln[:4].isdigit()]
    with Pilot.from_config(config) as pilot:
        verdict = "passed" if pilot.store.events(model="churn", kind="gate_passed") else "rejected"
    order = ["trigger_fired", "retrain_started", "retrain_finished", f"gate_{verdict}"]
    assert all(kind in lines for kind in order), done.stderr
    assert [lines.index(kind) for kind in order] == sorted(lines.index(kind) for kind in order)
    # the summary tells what happened in the tick, not that a finished retrain "started"
    assert "retrain started" not in done.stdout
    assert f"retrained v2, gate {verdict}" in done.stdout, done.stdout

    # the same decisions from the audit log, filtered
    listed = cli("events", "-c", str(config), "--kind", "retrain_finished", "--kind", "trigger_fired",
                 "--since", "1h", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["kind"] for r in rows} == {"trigger_fired", "retrain_finished"}
    assert rows[-1]["kind"] == "retrain_finished" and rows[-1]["numbers"]["version"] == 2
    text = cli("events", "-c", str(config), cwd=tmp_path)
    assert "retrain_finished" in text.stdout and "version_registered" in text.stdout
    old = cli("events", "-c", str(config), "--since", "2000-01-01", "--kind", "promoted", cwd=tmp_path)
    assert old.returncode == 0
    future = cli("events", "-c", str(config), "--since", "2999-01-01", cwd=tmp_path)
    assert future.stdout.strip() == "no events matching the filters"


def test_events_hints_at_a_misspelt_kind_and_refuses_a_bad_since(trained_project: Path, tmp_path: Path) -> None:
    config = copy_project(trained_project, tmp_path / "project")
    typo = cli("events", "-c", str(config), "--kind", "alias_movd", cwd=tmp_path)
    assert typo.returncode == 0 and typo.stdout.strip() == "no events matching the filters"
    assert "no event of kind 'alias_movd' in the log yet; did you mean 'alias_moved'?" in typo.stderr
    # a kind that has not happened yet is a valid filter, not an error
    later = cli("events", "-c", str(config), "--kind", "gate_rejected", "--json", cwd=tmp_path)
    assert later.returncode == 0 and later.stdout.strip() == "[]"
    bad_since = cli("events", "-c", str(config), "--since", "yesterday", cwd=tmp_path)
    assert bad_since.returncode == 1
    assert "--since: 'yesterday' is neither a duration" in bad_since.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_controller_prints_decisions(trained_project: Path, tmp_path: Path) -> None:
    config = copy_project(trained_project, tmp_path / "project", controller={"interval": "1s"})
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "modelpilot.cli", "serve", "-c", str(config), "--port", str(port), "--with-controller"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(server.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        # a decision recorded by anyone (here: another process) shows up in the server's timeline
        with Pilot.from_config(config) as pilot:
            pilot.store.add_event("rollback", model="churn", actor="ops", reason="marker 7f3a: complaints")
        deadline = time.monotonic() + 60
        while not any("marker 7f3a" in line for line in output):
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(0.2)
        line = next(line for line in output if "marker 7f3a" in line)
        assert "rollback" in line
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0
