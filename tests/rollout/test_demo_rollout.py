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
    decided = [e for e in events if e["kind"] in ("promoted", "rolled_back")]
    assert decided, kinds
    # the loop may roll out more than one model (a refresh after a change): judge the last rollout
    last_start = len(kinds) - 1 - kinds[::-1].index("rollout_started")
    steps = [e for e in events[last_start:] if e["kind"] == "canary_step"]
    if decided[-1]["kind"] == "promoted":
        assert [e["numbers"]["step"] for e in steps] == [1, 2, 3]
    assert last_start < len(kinds) - 1 - kinds[::-1].index(decided[-1]["kind"])
    # every rollout took its steps in order from the first (a canary never skips to full traffic)
    all_steps = [e["numbers"]["step"] for e in events if e["kind"] == "canary_step"]
    assert all_steps and all_steps[0] == 1
    assert all(b == a + 1 or b == 1 for a, b in zip(all_steps, all_steps[1:], strict=False)), all_steps
