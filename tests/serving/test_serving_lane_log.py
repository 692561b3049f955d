"""The process lane logs the rows it answers itself, before the answer leaves it.

A large request's rows are in the prediction log (in the lane process's own segment) by
the time the client has its answer: readable by the controller's window, joinable with
feedback, written once, and safe from a SIGTERM or even a kill -9 of the server. When the
lane cannot write (the artifact store refuses), the rows go back to the server's writer.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from serving_helpers import Env, instance, make_config, register, server_process
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import open_artifacts
from modelpilot.controller.logwindow import LogWindow
from modelpilot.serving import PredictionLogReader, create_app, start_in_thread
from modelpilot.store import Store

PREDICT = "/v1/models/churn/predict"
ROWS = 300  # ~25 KB of JSON: over offload_bytes=4096 below, so the lane answers


def big(prefix: str, n: int = ROWS, start: int = 0) -> dict[str, Any]:
    return {"instances": [instance(start + i) for i in range(n)],
            "ids": [f"{prefix}-{i}" for i in range(n)]}


def lane_segments(artifacts: Any) -> list[str]:
    return [k for k in artifacts.list("predlog/churn/predictions/") if "-lane" in k.rsplit("/", 1)[-1]]


def test_a_large_request_is_in_the_log_when_its_answer_arrives(env: Env, tmp_path: Path) -> None:
    # log_flush_interval 60 s, flush_rows 5000: the server's own writer writes nothing here
    cfg = make_config(tmp_path, offload_bytes=4096, batch_workers=1, batch_queue=4, lane_log_rows=ROWS)
    app = create_app(cfg, env.store, env.artifacts)
    handle, url = start_in_thread(app)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            light = client.post(PREDICT, json={"instances": [instance(0)], "ids": ["light-0"]})
            assert light.status_code == 200
            answers = [client.post(PREDICT, json=big(f"b{k}", start=k)) for k in range(2)]
            assert [r.status_code for r in answers] == [200, 200]
            # before any flush or shutdown: both batches are stored, each in one lane segment
            assert len(lane_segments(env.artifacts)) == 2
            logged = PredictionLogReader(env.artifacts, "churn").predictions()
            assert sorted(logged["request_id"]) == sorted(f"b{k}-{i}" for k in range(2) for i in range(ROWS))
            assert app.state.writer.rows_written == 0 and app.state.writer.pending_rows == 1  # light-0
            for k, r in enumerate(answers):
                body = r.json()
                rows = logged[logged["request_id"].str.startswith(f"b{k}-")].set_index("request_id")
                rows = rows.loc[body["ids"]]
                assert (rows["model_version"] == 1).all() and (rows["role"] == "primary").all()
                assert rows["prediction"].tolist() == [str(p) for p in body["predictions"]]
                np.testing.assert_allclose(np.stack(rows["probabilities"].to_numpy()), body["probabilities"])
                sent = pd.DataFrame(big(f"b{k}", start=k)["instances"])
                assert rows["f_age"].tolist() == sent["age"].tolist()
                assert rows["f_income"].tolist() == sent["income"].tolist()
                assert rows["f_plan"].tolist() == sent["plan"].tolist()
                assert rows["f_region"].tolist() == sent["region"].tolist()
                assert (rows["latency_ms"] > 0).all()
            assert _metric(client, "modelpilot_logged_rows_total", kind="predictions") == 2 * ROWS
            # feedback on the lane's ids: known to the server (recent ids), joined in the log
            fb = client.post("/v1/models/churn/feedback",
                             json={"ids": answers[0].json()["ids"][:50], "labels": [1, 0] * 25})
            assert fb.status_code == 200 and fb.json()["accepted"] == 50
    finally:
        handle.stop()  # drains the server's writer: light-0 and the labels
    window = LogWindow(env.artifacts, "churn", env.store)
    everything = window.window()
    assert len(everything) == 2 * ROWS + 1 and everything["request_id"].is_unique
    labelled = window.labelled()
    assert sorted(labelled["request_id"]) == sorted(f"b0-{i}" for i in range(50))
    assert labelled.set_index("request_id").loc["b0-1", "label"] == "0"


def test_a_lane_request_under_lane_log_rows_goes_to_the_server_writer(env: Env, tmp_path: Path) -> None:
    """A segment per moderately large request would make many small files: under
    ``serving.lane_log_rows`` the rows come back and join the server's buffered segments."""
    cfg = make_config(tmp_path, offload_bytes=4096, batch_workers=1, batch_queue=4, lane_log_rows=ROWS + 1)
    app = create_app(cfg, env.store, env.artifacts)
    handle, url = start_in_thread(app)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            answers = [client.post(PREDICT, json=big(f"s{k}", start=k)) for k in range(2)]
            assert all(r.status_code == 200 for r in answers)
            assert app.state.lane.completed == 2  # the lane answered both
            assert app.state.writer.pending_rows == 2 * ROWS  # and the server's writer holds the rows
            assert lane_segments(env.artifacts) == []
            assert app.state.writer.flush(30)
    finally:
        handle.stop()
    logged = PredictionLogReader(env.artifacts, "churn").predictions()
    assert sorted(logged["request_id"]) == sorted(f"s{k}-{i}" for k in range(2) for i in range(ROWS))
    assert lane_segments(env.artifacts) == []


def test_rows_go_to_the_server_writer_when_the_lane_cannot_write(env: Env, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, offload_bytes=4096, batch_workers=1, batch_queue=0,
                      log_flush_interval=0.2, lane_log_rows=ROWS)
    blocker = tmp_path / "artifacts" / "predlog" / "churn"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the model's log folder should be")  # every write fails
    app = create_app(cfg, env.store, env.artifacts)
    handle, url = start_in_thread(app)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            r = client.post(PREDICT, json=big("f"))
            assert r.status_code == 200 and len(r.json()["ids"]) == ROWS  # answered all the same
            assert app.state.writer.pending_rows == ROWS  # held by the server's writer instead
            blocker.unlink()  # the store recovers: the server's writer's retry stores them
            assert app.state.writer.flush(30)
            assert app.state.writer.rows_written == ROWS
    finally:
        handle.stop()
    logged = PredictionLogReader(env.artifacts, "churn").predictions()
    assert sorted(logged["request_id"]) == sorted(f"f-{i}" for i in range(ROWS))
    assert lane_segments(env.artifacts) == []


def test_a_killed_server_keeps_every_row_its_lane_answered(tmp_path: Path, classifiers: list[Pipeline]) -> None:
    """SIGTERM drains everything; kill -9 loses only the server's buffer, not the lane's rows."""
    (tmp_path / "pilot.yaml").write_text(
        "model: {name: churn, target: churned}\n"
        "store: {url: 'sqlite:///store.db'}\nartifacts: {url: artifacts}\n"
        "serving: {log_flush_interval: 60s, log_flush_rows: 100000, offload_bytes: 4096,"
        f" batch_queue: 4, lane_log_rows: {ROWS}}}\n"
    )
    cfg = make_config(tmp_path)
    with Store.open(cfg.store_url) as store:
        register(store, open_artifacts(cfg.artifacts_url), "churn", classifiers[0])
    artifacts = open_artifacts(cfg.artifacts_url)
    reader = PredictionLogReader(artifacts, "churn")
    expected: list[str] = []
    for run, stop in enumerate((signal.SIGTERM, signal.SIGKILL)):
        proc, url = server_process(tmp_path / "pilot.yaml", timeout=90)
        try:
            with httpx.Client(base_url=url, timeout=120) as c:
                for k in range(3):
                    r = c.post(PREDICT, json=big(f"r{run}b{k}", start=k))
                    assert r.status_code == 200
                    expected += r.json()["ids"]
                for i in range(5):
                    r = c.post(PREDICT, json={"instances": [instance(i)], "ids": [f"r{run}l{i}"]})
                    assert r.status_code == 200
            if stop == signal.SIGTERM:
                expected += [f"r{run}l{i}" for i in range(5)]  # drained on the way out
            proc.send_signal(stop)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        logged = reader.predictions()["request_id"]
        assert sorted(logged) == sorted(expected)  # each row once; the killed buffer only lost


def _metric(client: httpx.Client, name: str, **labels: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
