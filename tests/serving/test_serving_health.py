"""The log writer under bad rows and a failing store, as the server reports it."""

from __future__ import annotations

import time

from serving_helpers import Env, Served, instance

from modelpilot.serving import FeedbackBatch, PredictionLogReader


def test_quarantined_feedback_is_an_event_and_later_labels_are_written(served: Served, env: Env) -> None:
    r = served.client.post("/v1/models/churn/predict",
                           json={"instances": [instance(i) for i in range(3)], "ids": ["a", "b", "c"]})
    assert r.status_code == 200
    # a row only a direct writer user could produce (the door refuses lone surrogates)
    served.app.state.writer.log_feedback(FeedbackBatch(model="churn", ids=["a"], labels=["\ud800"]))
    assert served.app.state.writer.flush(10)
    fb = served.client.post("/v1/models/churn/feedback", json={"ids": ["b", "c"], "labels": [1, 0]})
    assert fb.status_code == 200 and fb.json()["accepted"] == 2
    assert served.client.get("/healthz").status_code == 200
    assert served.metric("modelpilot_log_quarantined_rows_total", model="churn", kind="feedback") == 1
    served.stop()  # the graceful shutdown (what SIGTERM does) writes the buffered labels
    feedback = PredictionLogReader(env.artifacts, "churn").feedback()
    assert feedback["request_id"].tolist() == ["b", "c"]
    events = env.store.events(model="churn", kind="log_rows_quarantined")
    assert len(events) == 1 and "1 feedback rows" in events[0].reason
    assert "surrogates not allowed" in events[0].reason


def test_healthz_is_503_while_the_log_cannot_be_written(served: Served, env: Env) -> None:
    writer = served.app.state.writer
    writer.flush_interval = 0.05
    blocker = env.cfg.resolve_path("artifacts") / "predlog" / "churn"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the model's folder should be")
    assert served.client.post("/v1/models/churn/predict", json={"instances": [instance()]}).status_code == 200
    deadline = time.monotonic() + 15
    while served.client.get("/healthz").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    r = served.client.get("/healthz")
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "unhealthy" and "cannot be written" in r.json()["reason"]
    blocker.unlink()
    while served.client.get("/healthz").status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.client.get("/healthz").json()["status"] == "ok"
    assert writer.rows_written == 1
