"""``modelpilot demo --rollout canary --json``: every canary step and the decision are events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_canary_lists_each_step_and_the_decision(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "demo", "--folder", str(tmp_path), "--rollout", "canary", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    events = json.loads(out.stdout)["events"]
    kinds = [e["kind"] for e in events]
    assert "rollout_started" in kinds
    steps = [e for e in events if e["kind"] == "canary_step"]
    decided = [e for e in events if e["kind"] in ("promoted", "rolled_back")]
    assert decided, kinds
    if decided[-1]["kind"] == "promoted":
        assert [e["numbers"]["step"] for e in steps] == [1, 2, 3]
    assert kinds.index("rollout_started") < kinds.index(decided[-1]["kind"])
