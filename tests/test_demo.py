"""``modelpilot demo --json`` in an empty folder: the whole loop, end to end, for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))


def test_demo_json_shows_drift_retrain_promotion_and_recovery(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [MODELPILOT, "demo", "--json"], cwd=tmp_path, env={**os.environ, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=180, check=False,
    )
    seconds = time.monotonic() - started

    assert done.returncode == 0, done.stderr[-3000:]
    assert seconds < 180
    result = json.loads(done.stdout)  # one JSON document on stdout, nothing else
    assert {"events", "phases", "metric", "retrains", "promotions", "cost"} <= set(result)
    assert result["metric"] == "accuracy"
    assert all({"time", "kind", "reason"} <= set(e) for e in result["events"])

    kinds = [e["kind"] for e in result["events"]]
    fired = [e for e in result["events"] if e["kind"] == "trigger_fired"]
    started_events = [e for e in result["events"] if e["kind"] == "retrain_started"]
    assert fired and started_events
    # the retrain was caused by drift: its reason is the trigger's (a performance drop,
    # overall or in the segment the drift hit first), and a trigger fired before it
    first = started_events[0]
    assert kinds.index("trigger_fired") < kinds.index("retrain_started")
    assert any(first["reason"].startswith(f["reason"][:40]) for f in fired), first["reason"]
    assert "below" in first["reason"] and "accuracy" in first["reason"]

    assert result["retrains"] >= 1 and result["retrains"] == kinds.count("retrain_finished")
    assert result["promotions"] >= 1 and result["promotions"] == kinds.count("promoted")
    assert kinds.index("retrain_started") < kinds.index("gate_passed") < kinds.index("promoted")
    assert result["cost"] > 0

    phases = result["phases"]
    assert set(phases) == {"before", "drift", "recovered"}
    assert phases["before"] > phases["drift"]  # the drift hurt
    assert phases["recovered"] > phases["drift"]  # and the loop repaired it
