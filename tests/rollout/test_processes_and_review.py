"""Two server processes route alike; approvals through the CLI; approve vs rollback races."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rollout_helpers import MODEL, REnv, instances, traffic

from modelpilot.errors import Conflict, ModelpilotError
from modelpilot.rollout import review
from modelpilot.rollout.state import active

CLI = [sys.executable, "-m", "modelpilot.cli"]


def write_config(env: REnv, rollout: dict[str, Any]) -> Path:
    path = env.tmp_path / "pilot.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"name": MODEL, "target": "churned"}, "store": {"url": "sqlite:///store.db"},
        "artifacts": {"url": "artifacts"}, "rollout": rollout,
        "serving": {"refresh_interval": 0.2, "log_flush_interval": 0.5},
    }))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_two_server_processes_on_one_store_route_identically(renv: REnv) -> None:
    config = write_config(renv, {"strategy": "ab", "ab": {"share": 0.5}})
    renv.configure({"strategy": "ab", "ab": {"share": 0.5}})
    renv.start("ab", renv.healthy)
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([*CLI, "serve", "-c", str(config), "--port", str(p)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
    try:
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
        deadline = time.monotonic() + 60
        for c in clients:
            while True:
                try:
                    if c.get("/healthz").json()["models"]:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the servers did not start"
                time.sleep(0.2)
        time.sleep(0.5)  # a refresh interval: both have read the rollout state
        rows = traffic(80, seed=9)
        routed = []
        for c in clients:
            versions = []
            for i in range(0, len(rows), 8):
                part = rows.iloc[i : i + 8]
                body = c.post(f"/v1/models/{MODEL}/predict", json={"instances": instances(part), "ids": part["id"].tolist()}).json()
                versions += body.get("model_versions") or [body["model_version"]] * len(part)
            routed.append(versions)
        assert routed[0] == routed[1]
        assert set(routed[0]) == {renv.champion, renv.healthy}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


def test_approval_flow_through_the_cli_with_tokens(renv: REnv) -> None:
    config = write_config(renv, {"strategy": "replace"})
    review.request_review(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain")
    first = cli("token", "create", "--role", "admin", "--name", "root", "-c", str(config), "--json")
    assert first.returncode == 0, first.stderr
    created = cli("token", "create", "--role", "operator", "--name", "carol", "-c", str(config), "--json",
                  "--token", json.loads(first.stdout)["token"])
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    assert token.startswith("mp_")

    denied = cli("approve", str(renv.healthy), "--comment", "ok", "-c", str(config))
    assert denied.returncode == 1 and "operator token" in denied.stderr
    assert renv.store.get_approval(MODEL, renv.healthy).status == "pending"

    ok = cli("approve", str(renv.healthy), "--comment", "ship it", "-c", str(config), "--json",
             env={"MODELPILOT_TOKEN": token})
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["by"] == "carol"
    assert renv.store.get_alias(MODEL, "champion") == renv.healthy
    approval = renv.store.get_approval(MODEL, renv.healthy)
    assert (approval.status, approval.actor, approval.comment) == ("approved", "carol", "ship it")

    back = cli("rollback", "--reason", "alerts", "-c", str(config), "--token", token, "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["champion"] == renv.champion == renv.store.get_alias(MODEL, "champion")


def test_concurrent_approve_and_rollback_end_in_one_consistent_state(renv: REnv) -> None:
    renv.configure({"strategy": "replace"})
    for _ in range(6):
        # champion history ends at v1; v2 waits for approval; then approve and rollback race
        renv.store.set_alias(MODEL, "champion", renv.worse)
        renv.store.set_alias(MODEL, "champion", renv.champion)
        candidate = renv.store.register_version(
            MODEL, run_id=None, artifact_key=renv.store.get_version(MODEL, renv.healthy).artifact_key,
            reference_key=None, signature=renv.store.get_version(MODEL, renv.healthy).signature,
            task="classification", classes=[0, 1], metrics={}, lineage={},
        ).version
        review.request_review(renv.store, MODEL, candidate, champion=renv.champion, reason="race")
        outcomes: dict[str, Any] = {}
        barrier = threading.Barrier(2)

        def run(name: str, fn: Any, barrier: threading.Barrier = barrier, outcomes: dict[str, Any] = outcomes) -> None:
            barrier.wait()
            try:
                outcomes[name] = fn()
            except ModelpilotError as exc:
                outcomes[name] = exc

        threads = [
            threading.Thread(target=run, args=("approve", lambda c=candidate: review.approve(renv.store, renv.cfg, MODEL, c, "ann"))),
            threading.Thread(target=run, args=("rollback", lambda: review.rollback(renv.store, MODEL, "ben"))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        champion = renv.store.get_alias(MODEL, "champion")
        won = [k for k, v in outcomes.items() if not isinstance(v, Exception)]
        lost = [k for k, v in outcomes.items() if isinstance(v, Exception)]
        assert len(won) >= 1, outcomes
        assert all(isinstance(outcomes[k], Conflict) for k in lost), outcomes
        history = renv.store.alias_history(MODEL, "champion")
        assert history[0].numbers["to"] == champion  # the log and the alias agree
        if won == ["approve"]:
            assert champion == candidate
        elif won == ["rollback"]:
            assert champion == renv.worse
        else:  # one after the other: approve then rollback restores v1 (or rollback then approve)
            assert champion in (renv.champion, candidate, renv.worse)
        assert active(renv.store, MODEL) is None


def test_approval_timeout_decides_per_config(renv: REnv) -> None:
    from datetime import UTC, datetime, timedelta

    renv.configure({"strategy": "replace"}, gates={"approval_timeout": "1h", "on_approval_timeout": "reject"})
    review.request_review(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain")
    assert review.check_timeouts(renv.store, renv.cfg, MODEL) == []
    later = datetime.now(UTC) + timedelta(hours=2)
    assert review.check_timeouts(renv.store, renv.cfg, MODEL, now=later) == [f"v{renv.healthy} rejected on timeout"]
    approval = renv.store.get_approval(MODEL, renv.healthy)
    assert (approval.status, approval.actor) == ("rejected", "timeout")
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"


def test_promote_through_the_cli_needs_force_for_a_rejected_version(renv: REnv) -> None:
    config = write_config(renv, {"strategy": "replace"})
    renv.store.set_version_status(MODEL, renv.worse, "rejected", actor="controller", reason="gate: worse than v1")
    renv.store.add_event("gate_rejected", model=MODEL, subject=f"v{renv.worse}", actor="controller",
                         reason="accuracy fell short of the champion's")

    refused = cli("promote", str(renv.worse), "-c", str(config))
    assert refused.returncode == 1 and "--force" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert renv.store.get_alias(MODEL, "champion") == renv.champion

    forced = cli("promote", str(renv.worse), "--force", "--reason", "on purpose", "-c", str(config), "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["champion"] == renv.worse == renv.store.get_alias(MODEL, "champion")
    (event,) = renv.store.events(model=MODEL, kind="promoted")
    assert event.numbers["forced"] is True and "accuracy fell short" in event.reason
