"""``modelpilot token``: the first token is created locally, every later one needs an admin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelpilot.store import Store

pytestmark = pytest.mark.slow  # six CLI processes, each opening the store

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run(cwd: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in ENV.items() if k != "MODELPILOT_TOKEN"}
    if token is not None:
        env["MODELPILOT_TOKEN"] = token
    return subprocess.run([MODELPILOT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_token_create_needs_an_admin_token_once_any_token_exists(tmp_path: Path) -> None:
    (tmp_path / "pilot.yaml").write_text("model:\n  name: churn\n  target: churned\n")
    not_admin = run(tmp_path, "token", "create", "--role", "operator", "--name", "ops")
    assert not_admin.returncode == 1 and "the first token must be an admin token" in " ".join(not_admin.stderr.split())
    first = run(tmp_path, "token", "create", "--role", "admin", "--name", "root", "--json")
    assert first.returncode == 0, first.stderr
    admin = json.loads(first.stdout)["token"]

    refused = run(tmp_path, "token", "create", "--role", "admin", "--name", "sneaky")
    assert refused.returncode == 1 and "needs an admin token once any token exists" in " ".join(refused.stderr.split())
    operator = json.loads(run(tmp_path, "token", "create", "--role", "operator", "--name", "ops", "--json",
                              token=admin).stdout)["token"]
    low = run(tmp_path, "token", "create", "--role", "admin", "--name", "escalate", token=operator)
    assert low.returncode == 1 and "has role operator" in low.stderr
    assert run(tmp_path, "token", "revoke", "2", token=operator).returncode == 1
    labeler = run(tmp_path, "token", "create", "--role", "labeler", "--name", "labels", "--token", admin)
    assert labeler.returncode == 0, labeler.stderr

    store = Store.open(f"sqlite:///{tmp_path / '.modelpilot' / 'store.db'}")
    try:
        assert [(t.name, t.role) for t in store.list_tokens()] == [
            ("root", "admin"), ("ops", "operator"), ("labels", "labeler"),
        ]
        assert all(t.active for t in store.list_tokens())
    finally:
        store.close()
    assert run(tmp_path, "token", "revoke", "2", token=admin).returncode == 0
