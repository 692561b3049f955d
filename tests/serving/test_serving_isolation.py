"""Large batches run in their own lane: light requests are answered meanwhile; a full lane is a 503.

The thread lane is driven with the model cache's fault injector (a batch that waits until
the test releases it); the process lane, which the injector cannot reach, with real
concurrent batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serving_helpers import Env, instance, make_config

from modelpilot.serving import create_app, start_in_thread

PREDICT = "/v1/models/churn/predict"
BATCH = {"instances": [instance(i) for i in range(500)]}  # ~40 KB: over offload_bytes below


class Gate:
    """A fault injector that holds every multi-row predict until released (a slow batch)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, model: Any, columns: dict[str, np.ndarray]) -> None:
        if len(next(iter(columns.values()))) > 1:
            self.entered.set()
            assert self.release.wait(60), "the test never released the batch"
        return None


@pytest.fixture
def gated(env: Env, tmp_path: Path) -> Iterator[tuple[Any, httpx.Client, Gate]]:
    cfg = make_config(tmp_path, offload_bytes=4096, batch_workers=1, batch_queue=1, max_instances=600,
                      batch_lane="thread")  # the fault injector reaches threads, not processes
    gate = Gate()
    app = create_app(cfg, env.store, env.artifacts, fault_injector=gate)
    handle, url = start_in_thread(app)
    client = httpx.Client(base_url=url, timeout=60)
    try:
        yield app, client, gate
    finally:
        gate.release.set()
        client.close()
        handle.stop()


def test_light_requests_are_answered_while_a_batch_runs(gated: tuple[Any, httpx.Client, Gate]) -> None:
    app, client, gate = gated
    with ThreadPoolExecutor(3) as pool:
        heavy = pool.submit(client.post, PREDICT, json=BATCH)
        assert gate.entered.wait(30)
        # the batch holds its lane thread; the event loop still answers single rows
        for i in range(5):
            r = client.post(PREDICT, json={"instances": [instance(i)]})
            assert r.status_code == 200 and len(r.json()["predictions"]) == 1
        assert not heavy.done()
        waiting = pool.submit(client.post, PREDICT, json=BATCH)  # the one queue slot
        while app.state.lane.in_flight < 2:
            threading.Event().wait(0.01)
        full = client.post(PREDICT, json=BATCH)  # lane and queue full: refused at once
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert full.json()["error"]["type"] == "ServerBusy"
        assert "serving.batch_queue=1" in full.json()["error"]["message"]
        gate.release.set()
        for future in (heavy, waiting):
            r = future.result(60)
            assert r.status_code == 200 and len(r.json()["predictions"]) == 500
    assert app.state.lane.completed == 2 and app.state.lane.refused == 1


def test_a_batch_over_max_instances_is_refused(gated: tuple[Any, httpx.Client, Gate]) -> None:
    _, client, gate = gated
    gate.release.set()
    r = client.post(PREDICT, json={"instances": [instance(i) for i in range(601)]})
    assert r.status_code == 422
    assert "601 instances in one request is more than serving.max_instances=600" in r.json()["error"]["message"]
    r = client.post(PREDICT, json={"instances": [instance(i) for i in range(600)]})
    assert r.status_code == 200 and len(r.json()["ids"]) == 600


def test_the_process_lane_answers_and_logs_like_the_loop(env: Env, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, offload_bytes=4096, batch_workers=1, batch_queue=0)
    assert cfg.serving.batch_lane == "process"  # the default
    app = create_app(cfg, env.store, env.artifacts)
    handle, url = start_in_thread(app)
    rows = [instance(i) for i in range(300)]
    ids = [f"big-{i}" for i in range(300)]
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            small = [client.post(PREDICT, json={"instances": [row]}).json() for row in rows[:5]]
            with ThreadPoolExecutor(4) as pool:  # the first batch starts the process and loads
                answers = list(pool.map(lambda k: client.post(PREDICT, json={
                    "instances": rows, "ids": [f"{i}-{k}" for i in ids]}), range(4)))
            assert {r.status_code for r in answers} <= {200, 503}
            done = [r for r in answers if r.status_code == 200]
            assert done and len(done) < 4  # one lane slot, no queue: the others were refused
            assert all(r.headers["retry-after"] == "1" for r in answers if r.status_code == 503)
            body = done[0].json()
            assert [p["predictions"][0] for p in small] == body["predictions"][:5]
            np.testing.assert_allclose([p["probabilities"][0] for p in small], body["probabilities"][:5])
            bad = client.post(PREDICT, json={"instances": [*rows[:-1], {**rows[0], "age": "old"}]})
            assert bad.status_code == 422, bad.text  # raised in the lane process, answered as usual
            assert "'age' (type float" in bad.json()["error"]["message"]
            fb = client.post("/v1/models/churn/feedback", json={"ids": body["ids"][:2], "labels": [1, 0]})
            assert fb.status_code == 200 and fb.json()["accepted"] == 2  # ids known to the server
        assert app.state.lane.completed == len(done)
    finally:
        handle.stop()
    from modelpilot.serving import PredictionLogReader

    logged = PredictionLogReader(env.artifacts, "churn").predictions()
    assert len(logged) == 5 + 300 * len(done)
    assert set(body["ids"]) <= set(logged["request_id"])
