"""The home side of a fleet: the report and bundle endpoints, drift per device from counts,
triggers on aggregates, pins, the canary across devices, and the cost per device."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from edge_helpers import Fleet, shifted_frame
from serving_helpers import make_frame

from modelpilot import auth
from modelpilot.edge.agent import Agent, open_bundle
from modelpilot.edge.fleet import (
    canary_devices,
    desired_version,
    device_costs,
    fleet_tick,
    start_canary,
)
from modelpilot.serving import create_app, start_in_thread


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


@pytest.fixture
def home(fleet: Fleet) -> Iterator[tuple[str, dict[str, str]]]:
    """The server, and three registered devices with their tokens."""
    tokens = {}
    for name in ("d1", "d2", "d3"):
        fleet.store.add_device(name, "churn")
        tokens[name] = auth.create_device_token(fleet.store, name)
    handle, url = start_in_thread(create_app(fleet.cfg, fleet.store, fleet.artifacts))
    try:
        yield url, tokens
    finally:
        handle.stop()


def _agent(fleet: Fleet, tmp: Path, name: str, url: str | None, token: str = "") -> Agent:
    from modelpilot.edge.agent import Home

    return Agent(open_bundle(fleet.bundle, fleet.public_key), fleet.public_key, tmp / name, device=name,
                 home=Home(url, name, token) if url else None, window_rows=10_000, batch=200)


def test_reports_are_refused_clearly_and_counted(fleet: Fleet, home: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, tokens = home
    agent = _agent(fleet, tmp_path, "d1", None)
    agent.feed(_rows(make_frame(50, 1)))
    agent.close_window()
    good = json.loads(agent.outbox.pending()[0].read_text())
    post = lambda device, body, token: httpx.post(  # noqa: E731
        f"{url}/v1/edge/{device}/report", content=body, headers={"Authorization": f"Bearer {token}"})
    r = post("d1", json.dumps(good), "mp_wrong")
    assert r.status_code == 401 and "device token" in r.json()["error"]["message"]
    r = post("d1", json.dumps(good), tokens["d2"])
    assert r.status_code == 403 and "not the token of device 'd1'" in r.json()["error"]["message"]
    r = post("d1", b"{not json", tokens["d1"])
    assert r.status_code in (400, 422)
    bad = {**good, "numeric": {**good["numeric"], "age": good["numeric"]["age"][:-1]}}
    r = post("d1", json.dumps(bad), tokens["d1"])
    assert r.status_code == 422 and "'numeric.age' must be" in r.json()["error"]["message"]
    r = post("d1", json.dumps({**good, "rows": good["rows"] + 1}), tokens["d1"])
    assert r.status_code == 422 and "sum to 50, not to the 51 rows" in r.json()["error"]["message"]
    r = post("d1", json.dumps({**good, "device": "d2"}), tokens["d1"])
    assert r.status_code == 422 and "names device 'd2'" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/edge/d1/report", content=b"\x1f\x8b not gzip",
                   headers={"Authorization": f"Bearer {tokens['d1']}", "Content-Encoding": "gzip"})
    assert r.status_code == 422 and "cannot be read" in r.json()["error"]["message"]
    assert fleet.store.get_device("d1").info["refused"] == 5 and not fleet.store.edge_reports("churn")
    assert post("d1", json.dumps(good), tokens["d1"]).json()["accepted"] is True
    # an operator's token is not a device token, and a device token cannot operate
    assert httpx.post(f"{url}/v1/models/churn/versions/1/approve",
                      headers={"Authorization": f"Bearer {tokens['d1']}"}).status_code == 403
    # a device token does not close the CLI: no "real" token exists yet
    assert not auth.tokens_exist(fleet.store)


def test_bundles_go_out_with_an_etag_and_follow_pins_and_canaries(fleet: Fleet, home: tuple[str, dict[str, str]]) -> None:
    url, tokens = home
    get = lambda device, etag=None: httpx.get(  # noqa: E731
        f"{url}/v1/edge/{device}/bundle",
        headers={"Authorization": f"Bearer {tokens[device]}", **({"If-None-Match": etag} if etag else {})})
    first = get("d1")
    assert first.status_code == 200 and open_bundle(first.content, fleet.public_key).version == 1
    assert get("d1", first.headers["etag"]).status_code == 304
    v2, _ = fleet.register(seed=1, max_iter=20, champion=False)
    fleet.store.pin_device("d2", v2)
    assert open_bundle(get("d2").content, fleet.public_key).version == v2
    assert get("d1", first.headers["etag"]).status_code == 304  # d1 still follows the champion v1
    fleet.store.pin_device("d2", None)
    state = start_canary(fleet.cfg, fleet.store, "churn", v2)
    assert state["canary"] == canary_devices(["d1", "d2", "d3"], fleet.cfg.edge.canary_share)
    for d in ("d1", "d2", "d3"):
        want = v2 if d in state["canary"] else 1
        assert desired_version(fleet.store, fleet.store.get_device(d)) == want
        assert int(get(d).headers["x-model-version"]) == want
    assert get("d1").status_code == 200 and httpx.get(f"{url}/v1/edge/nobody/bundle").status_code == 401


def test_only_the_shifted_device_is_flagged_and_a_trigger_fires_on_aggregates(fleet: Fleet, tmp_path: Path) -> None:
    cfg = fleet.cfg.model_copy(deep=True)
    cfg.triggers.feature_drift.enabled = True
    cfg.triggers.feature_drift.threshold = 0.25
    cfg.triggers.drift_requires_performance = False
    cfg.edge.min_rows = 200
    for name, frame in (("a", make_frame(600, 11)), ("b", make_frame(600, 12)), ("c", shifted_frame(600, 13))):
        fleet.store.add_device(name, "churn")
        agent = _agent(fleet, tmp_path, name, None)
        agent.feed(_rows(frame))
        agent.close_window()
        doc = json.loads(agent.outbox.pending()[0].read_text())
        fleet.store.add_edge_report(name, version=1, seq=doc["seq"], rows=doc["rows"], size=100, payload=doc)
    asked: list[str] = []
    out = fleet_tick(cfg, fleet.store, fleet.artifacts, retrain=lambda reason: asked.append(reason) or None)
    flagged = {d for d, info in out["devices"].items() if info["flagged"]}
    assert flagged == {"c"}, out["devices"]
    assert set(out["devices"]["c"]["drifted_features"]) >= {"age", "plan"}
    # the pooled fleet (dragged by c) and device c fire; devices a and b are quiet
    assert {d["scope"] for d in out["decisions"] if d["status"] == "fired"} == {"the pooled fleet", "device c"}
    assert out["retrain"] and asked == [out["retrain"]]
    assert [e.subject for e in fleet.store.events(model="churn", kind="edge_drift")] == ["c"]
    assert fleet.store.get_device("c").info["drift"]["flagged"] is True
    # the dashboard lists the devices with version, last report and drift
    from fastapi.testclient import TestClient

    with TestClient(create_app(cfg, fleet.store, fleet.artifacts)) as client:
        page = client.get("/ui/devices").text
    rows = {r.split("</td>")[0]: r for r in page.split("<tr>\n<td>")[1:]}
    assert set(rows) == {"a", "b", "c"}
    assert "drifted</strong>: age, plan" in rows["c"] and "stable" in rows["a"] and "v1" in rows["b"]


def test_the_canary_is_promoted_when_healthy_and_rolled_back_on_errors(fleet: Fleet, tmp_path: Path) -> None:
    v2, _ = fleet.register(seed=1, max_iter=20, champion=False)
    cfg = fleet.cfg.model_copy(deep=True)
    cfg.edge.canary_rows = 100
    for name in ("a", "b", "c", "d"):
        fleet.store.add_device(name, "churn")
    state = start_canary(cfg, fleet.store, "churn", v2)
    seq = {"n": 0}

    def report(name: str, version: int, rows: int, errors: int = 0) -> None:
        bundle = fleet.store.get_state("edge_bundles", f"churn:{version}")
        data = fleet.artifacts.get_bytes(bundle["key"])
        agent = Agent(open_bundle(data, fleet.public_key), fleet.public_key, tmp_path / f"{name}{seq['n']}", device=name)
        agent.feed(_rows(make_frame(rows, seq["n"])))
        agent.window.errors["inference"] += errors
        agent.close_window()
        doc = json.loads(agent.outbox.pending()[0].read_text())
        seq["n"] += 1
        fleet.store.add_edge_report(name, version=version, seq=seq["n"], rows=doc["rows"], size=1, payload=doc)

    canary = state["canary"][0]
    report(canary, v2, 60)
    assert fleet_tick(cfg, fleet.store, fleet.artifacts)["rollout"]["status"] == "in_progress"  # too few rows
    report(canary, v2, 60)
    for other in {"a", "b", "c", "d"} - {canary}:
        report(other, 1, 60)
    out = fleet_tick(cfg, fleet.store, fleet.artifacts)
    assert out["rollout"]["status"] == "promoted" and fleet.store.get_alias("churn", "champion") == v2
    # the next version breaks on the canary device: rolled back, everyone stays on v2
    v3, _ = fleet.register(seed=2, max_iter=5, champion=False)
    state = start_canary(cfg, fleet.store, "churn", v3)
    report(state["canary"][0], v3, 40, errors=20)
    out = fleet_tick(cfg, fleet.store, fleet.artifacts)
    assert out["rollout"]["status"] == "rolled_back" and "error rate" in out["rollout"]["breaches"][0]
    assert fleet.store.get_alias("churn", "champion") == v2
    assert desired_version(fleet.store, fleet.store.get_device(state["canary"][0])) == v2


def test_cost_per_device_against_shipping_the_raw_rows(fleet: Fleet, home: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, tokens = home
    agent = _agent(fleet, tmp_path, "d1", url, tokens["d1"])
    source = tmp_path / "rows.csv"
    make_frame(2000, 3).to_csv(source, index=False)
    agent.feed_file(source)
    agent.close_window()
    assert agent.flush() == 1
    [row] = [r for r in device_costs(fleet.cfg, fleet.store, "churn") if r["device"] == "d1"]
    assert row["rows"] == 2000 and row["raw_bytes"] == source.stat().st_size
    assert 0 < row["bytes_sent"] < row["raw_bytes"] and row["cpu_seconds"] > 0
    assert row["bundle_bytes"] == len(fleet.bundle)
    assert row["transfer"] == pytest.approx(row["bytes_sent"] / 1e9 * fleet.cfg.costs.transfer_per_gb)
    assert row["raw_transfer"] > row["transfer"]



def test_a_report_home_refuses_is_kept_aside_and_the_rest_still_goes(fleet: Fleet, home: tuple[str, dict[str, str]],
                                                                    tmp_path: Path) -> None:
    url, tokens = home
    agent = _agent(fleet, tmp_path, "d1", url, tokens["d1"])
    agent.feed(_rows(make_frame(30, 1)))
    agent.close_window()
    bad = agent.outbox.pending()[0]
    doc = json.loads(bad.read_text())
    bad.write_text(json.dumps({**doc, "version": 99}))  # a version home never published
    agent.feed(_rows(make_frame(20, 2)))
    agent.close_window()
    assert agent.flush() == 1 and agent.counters["refused"] == 1 and not agent.outbox.pending()
    kept = agent.outbox.refused_dir / bad.name
    assert json.loads(kept.read_text())["version"] == 99
    assert "version 99 of churn, which does not exist" in (agent.outbox.refused_dir / f"{bad.stem}.reason.txt").read_text()
    assert [r.seq for r in fleet.store.edge_reports("churn", device="d1")] == [2]
