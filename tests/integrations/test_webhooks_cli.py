"""``modelpilot webhooks send`` and ``deliveries`` as a user runs them, against a real receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from receivers import Receiver

from modelpilot.config import PilotConfig
from modelpilot.store import Store

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELPILOT, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})})


@pytest.mark.slow  # five CLI processes
def test_send_and_list_deliveries(tmp_path: Path, receiver: Callable[..., Receiver]) -> None:
    r = receiver(b"cli-secret")
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump({
        "model": {"name": "churn", "target": "y"},
        "webhooks": [{"name": "ops", "url": r.url, "secret_env": "MP_CLI_SECRET"}]}))
    env = {"MP_CLI_SECRET": "cli-secret"}
    first = run(tmp_path, "webhooks", "deliveries", "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == []  # opening the store started the webhook's cursor
    cfg = PilotConfig.load(tmp_path / "pilot.yaml")
    with Store.open(cfg.store_url) as store:
        store.add_event("gate_rejected", model="churn", subject="v2", reason="worse than v1")
    sent = run(tmp_path, "webhooks", "send", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"queued": 1, "attempted": 1, "delivered": 1, "failed": 0, "pending": 0}
    assert [x["body"]["event"]["reason"] for x in r.received] == ["worse than v1"]
    listed = json.loads(run(tmp_path, "webhooks", "deliveries", "--json", env=env).stdout)
    assert [(d["webhook"], d["kind"], d["status"], d["attempts"], d["http_status"]) for d in listed] == [
        ("ops", "gate_rejected", "delivered", 1, 200)]
    table = run(tmp_path, "webhooks", "deliveries", env=env)
    assert "ops event" in table.stdout and "delivered after 1 attempt(s)" in table.stdout

    missing = run(tmp_path, "webhooks", "send")  # the secret's variable is not set
    assert missing.returncode == 1 and "MP_CLI_SECRET" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump({"model": {"name": "churn", "target": "y"}}))
    none = run(tmp_path, "webhooks", "send")
    assert none.returncode == 1 and "no webhooks in pilot.yaml" in none.stderr
