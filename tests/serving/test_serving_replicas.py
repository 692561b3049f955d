"""Two replicas over one store and artifact folder: a label sent to the replica that did
not serve the prediction is held, then joined once the other replica's log has the id."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_helpers import instance, make_config, register, server_process
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import open_artifacts
from modelpilot.serving import (
    PredictionBatch,
    PredictionLogReader,
    PredictionLogWriter,
)
from modelpilot.serving.feedback import FeedbackDesk
from modelpilot.store import Store


def _metric(client: httpx.Client, outcome: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("modelpilot_feedback_rows_total{") and f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_feedback_on_another_replica_is_held_and_joined(tmp_path: Path, classifiers: list[Pipeline]) -> None:
    cfg = make_config(tmp_path)
    config = tmp_path / "pilot.yaml"
    config.write_text(  # replica A writes its log only every 2 s
        "model: {name: churn, target: churned}\n"
        "store: {url: 'sqlite:///store.db'}\nartifacts: {url: artifacts}\n"
        "serving: {log_flush_interval: 2s, log_flush_rows: 100000}\n"
    )
    with Store.open(cfg.store_url) as store:
        register(store, open_artifacts(cfg.artifacts_url), "churn", classifiers[0])
    procs = []
    try:
        a, url_a = server_process(config)
        procs.append(a)
        b, url_b = server_process(config)
        procs.append(b)
        with httpx.Client(base_url=url_a) as ca, httpx.Client(base_url=url_b) as cb:
            r = ca.post("/v1/models/churn/predict",
                        json={"instances": [instance(1), instance(2)], "ids": ["on-a-1", "on-a-2"]})
            assert r.status_code == 200
            fb = cb.post("/v1/models/churn/feedback", json={"ids": ["on-a-1", "on-a-2"], "labels": [1, 0]})
            # B has not seen these ids and A has not flushed: held, never refused
            assert fb.status_code == 202, fb.text
            assert fb.json() == {"accepted": 0, "held": 2, "held_ids": ["on-a-1", "on-a-2"]}
            deadline = time.monotonic() + 60
            while _metric(cb, "resolved") < 2:  # A flushes; B's desk finds the ids in A's segment
                assert time.monotonic() < deadline, "B never matched the held labels"
                time.sleep(0.2)
            assert _metric(cb, "held") == 2 and _metric(cb, "dropped") == 0
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    joined = PredictionLogReader(open_artifacts(cfg.artifacts_url), "churn").joined().set_index("request_id")
    assert joined.loc["on-a-1", "label"] == "1" and joined.loc["on-a-2", "label"] == "0"
    assert (joined["feedback_ts"] > joined["ts"]).all()


def _prediction(ids: list[str]) -> PredictionBatch:
    n = len(ids)
    preds = np.empty(n, dtype=object)
    preds[:] = [1] * n
    return PredictionBatch(model="m", ids=ids, version=1, predictions=preds, scores=np.full(n, 0.7),
                           probabilities=None, features={"x": np.arange(n, dtype=float)})


@pytest.mark.parametrize("shutdown", [False, True])
def test_the_desk_matches_expires_and_writes_on_shutdown(tmp_path: Path, shutdown: bool) -> None:
    artifacts = open_artifacts(str(tmp_path))
    writer = PredictionLogWriter(artifacts, flush_rows=100_000, flush_interval=3600)
    hold = 3600.0 if shutdown else 0.5
    desk = FeedbackDesk(artifacts, writer, hold=hold, poll=0.05)
    desk.hold("m", ["late", "never"], ["1", "0"], [2.5, None], ts_us=1_800_000_000_000_000)
    other = PredictionLogWriter(artifacts, replica_id="other")  # another replica's segment
    other.log_predictions(_prediction(["late"]))
    other.close()
    deadline = time.monotonic() + 30
    while desk.resolved < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert desk.resolved == 1
    if not shutdown:
        while desk.dropped < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert desk.dropped == 1 and desk.held == 0
    desk.close()
    writer.close()
    feedback = PredictionLogReader(artifacts, "m").feedback().set_index("request_id")
    expected = ["late", "never"] if shutdown else ["late"]
    assert sorted(feedback.index) == expected
    assert feedback.loc["late", "reward"] == 2.5 and feedback.loc["late", "label"] == "1"
    assert feedback.loc["late", "ts"].value // 1000 == 1_800_000_000_000_000  # the time received
