"""``modelpilot serve --with-controller``: the loop ticks inside the server process.

The server is a real subprocess on a free loopback port. Traffic and labels go over HTTP;
the in-process controller must monitor what this server logged (it flushes the log at the
start of every tick) and publish the drift statistics on ``/metrics``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from controller_helpers import copy_project, stream

from modelpilot.pilot import Pilot


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_controller_monitors_what_it_serves(trained_project: Path, tmp_path: Path) -> None:
    config = copy_project(
        trained_project, tmp_path / "project",
        controller={"interval": "1s"},
        serving={"log_flush_interval": 3600},  # only the tick's flush can make the rows visible
        monitoring={"window_size": 500, "min_samples": 100},
    )
    port = _free_port()
    cmd = [sys.executable, "-m", "modelpilot.cli", "serve", "-c", str(config), "--port", str(port), "--with-controller"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:  # wait for the server to accept
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            rows = stream(300, 0)
            names = ["tenure_months", "monthly_spend", "support_calls", "age", "discount_pct", "plan", "region", "channel"]
            instances = rows[names].astype(object).where(rows[names].notna(), None).to_dict("records")
            ids = [f"S{i:05d}" for i in range(len(rows))]
            assert client.post(f"{base}/v1/models/churn/predict", json={"instances": instances, "ids": ids}).status_code == 200
            fb = client.post(f"{base}/v1/models/churn/feedback", json={"ids": ids, "labels": rows["churned"].tolist()})
            assert fb.json()["accepted"] == len(ids)

            deadline = time.monotonic() + 60
            while True:  # a tick after the feedback sees 300 labelled predictions
                with Pilot.from_config(config) as pilot:
                    reports = pilot.store.monitoring_reports("churn", limit=1)
                if reports and reports[0].n_labelled == len(ids):
                    break
                assert time.monotonic() < deadline, f"no tick saw the labels: {reports[:1]}"
                time.sleep(0.5)
            assert reports[0].n_predictions == len(ids)
            assert 0.6 < reports[0].summary["performance"] <= 1.0
            metrics = client.get(f"{base}/metrics").text
            assert 'modelpilot_feature_drift{feature="support_calls",model="churn"}' in metrics
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0
