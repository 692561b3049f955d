"""Done when: the server and three agent processes on loopback, one fed a shifted distribution.

Only the shifted device is flagged; a retrain is triggered from aggregates alone; the new
bundle goes to a canary device, is promoted on its health and then pulled and verified by all
three; a tampered bundle is refused and reported; an outage of home is replayed exactly once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from edge_helpers import Fleet, free_port, rezip, shifted_frame, src_env
from serving_helpers import make_frame

from modelpilot import auth
from modelpilot.edge.bundle import publish
from modelpilot.edge.fleet import fleet_tick
from modelpilot.serving import create_app, start_in_thread

pytestmark = pytest.mark.slow
DEVICES = ("d1", "d2", "d3")


def _drop(folder: Path, name: str, frame: pd.DataFrame) -> None:
    tmp = folder / f"{name}.part"
    frame.to_csv(tmp, index=False)
    tmp.rename(folder / f"{name}.csv")  # the agent never sees half a file


def _wait(what: str, check: Callable[[], Any], timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def agents(fleet: Fleet, tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    app = lambda: create_app(fleet.cfg, fleet.store, fleet.artifacts)  # noqa: E731
    handle, url = start_in_thread(app(), port=port)
    bundle = tmp_path / "v1.bundle.zip"
    bundle.write_bytes(fleet.bundle)
    procs, folders = {}, {}
    for name in DEVICES:
        fleet.store.add_device(name, "churn")
        folders[name] = tmp_path / f"in-{name}"
        folders[name].mkdir()
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "modelpilot.cli", "edge", "run", str(bundle), "--source", str(folders[name]),
             "--public-key", str(fleet.public_path), "--state", str(tmp_path / f"state-{name}"), "--home", url,
             "--device", name, "--token", auth.create_device_token(fleet.store, name), "--window-rows", "300",
             "--poll", "0.5", "--follow", "--stop-after", "170"],
            env=src_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    env: dict[str, Any] = {"url": url, "port": port, "handle": handle, "app": app, "folders": folders,
                           "procs": procs, "tmp": tmp_path}
    try:
        yield env
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(timeout=30)
        env["handle"].stop()


def _rows(fleet: Fleet, device: str, version: int | None = None) -> int:
    return sum(r.rows for r in fleet.store.edge_reports("churn", device=device, version=version))


def test_the_fleet_loop_end_to_end(fleet: Fleet, agents: dict[str, Any]) -> None:
    cfg = fleet.cfg.model_copy(deep=True)
    cfg.triggers.feature_drift.enabled = True
    cfg.triggers.feature_drift.threshold = 0.25
    cfg.triggers.drift_requires_performance = False
    cfg.edge.min_rows, cfg.edge.canary_share, cfg.edge.canary_rows = 300, 0.3, 200
    folders, written = agents["folders"], dict.fromkeys(DEVICES, 0)

    def feed(name: str, n: int, seed: int, shifted: bool = False) -> None:
        _drop(folders[name], f"batch-{seed}", (shifted_frame if shifted else make_frame)(n, seed))
        written[name] += n

    for i, name in enumerate(DEVICES):
        feed(name, 600, 10 + i, shifted=name == "d3")
    _wait("600 rows reported by each device", lambda: all(_rows(fleet, d) == 600 for d in DEVICES))

    # only the shifted device is flagged; the triggers fire on the aggregates alone
    retrained: list[str] = []

    def retrain(reason: str) -> int:
        retrained.append(reason)
        return fleet.register(seed=1, max_iter=20, champion=False)[0]

    out = fleet_tick(cfg, fleet.store, fleet.artifacts, retrain=retrain)
    assert {d for d, info in out["devices"].items() if info["flagged"]} == {"d3"}
    assert retrained and out["retrain"] == retrained[0] and not fleet.store.edge_reports("churn")[0].payload.get("row")
    v2, canary = out["rollout"]["candidate"], out["rollout"]["canary"]
    assert v2 == 2 and len(canary) == 1

    # the canary device pulls v2 first; once healthy on enough rows, every device gets it
    _wait("the canary device on v2", lambda: fleet.store.get_device(canary[0]).version == v2)
    for i, name in enumerate(DEVICES):
        feed(name, 300, 20 + i)
    _wait("canary rows on v2", lambda: _rows(fleet, canary[0], v2) >= 200)
    assert fleet_tick(cfg, fleet.store, fleet.artifacts)["rollout"]["status"] == "promoted"
    _wait("every device on v2 (pulled, verified, swapped)",
          lambda: all(fleet.store.get_device(d).version == v2 for d in DEVICES))

    # a tampered bundle is refused and reported; the device keeps scoring with v2
    v3, good = fleet.register(seed=2, max_iter=5, champion=False)
    publish(fleet.store, fleet.artifacts, "churn", v3, rezip(good, {"model.onnx": b"\x08\x07 not the signed graph"}))
    fleet.store.pin_device("d1", v3)
    _wait("d1 reporting the refusal", lambda: fleet.store.get_device("d1").info.get("bundle_refused", 0) >= 1)
    fleet.store.pin_device("d1", None)
    feed("d1", 100, 30)
    _wait("d1 still scoring on v2", lambda: _rows(fleet, "d1") == written["d1"])
    assert fleet.store.get_device("d1").version == v2
    assert fleet.store.events(model="churn", kind="edge_bundle_refused")

    # home goes down: d2 keeps scoring into its outbox; when home is back it is replayed once
    agents["handle"].stop()
    feed("d2", 300, 40)
    outbox = agents["tmp"] / "state-d2" / "outbox"
    _wait("d2's reports held in its outbox", lambda: [p for p in outbox.glob("*.json") if p.stem.isdigit()])
    agents["handle"], _ = start_in_thread(agents["app"](), port=agents["port"])
    _wait("d2's outbox replayed", lambda: not [p for p in outbox.glob("*.json") if p.stem.isdigit()])
    stored = fleet.store.edge_reports("churn", device="d2")
    assert [r.seq for r in stored] == list(range(1, len(stored) + 1))  # in order, no gap, no double
    assert _rows(fleet, "d2") == written["d2"]
    for name, proc in agents["procs"].items():
        assert proc.poll() is None, f"agent {name} died: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
