"""The HTTP API over a real uvicorn server: predict, feedback, info, health, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from serving_helpers import CATEGORICAL, NUMERIC, Env, Served, instance, register
from sklearn.pipeline import Pipeline

from modelpilot.serving import PredictionLogReader


def test_predict_single_matches_the_pipeline(served: Served, classifiers: list[Pipeline]) -> None:
    r = served.client.post("/v1/models/churn/predict", json={"instances": [instance(3)]})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = classifiers[0].predict_proba(pd.DataFrame([instance(3)])[NUMERIC + CATEGORICAL])
    assert body["model_version"] == 1
    assert body["predictions"] == [int(classifiers[0].classes_[expected.argmax()])]
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-12)
    assert len(body["ids"]) == 1 and len(body["ids"][0]) == 32
    assert served.app.state.cache.get("churn").fast is not None  # the verified fast path served it


def test_predict_batch_ids_round_trip_and_log(served: Served, env: Env) -> None:
    rows = [instance(i) for i in range(25)]
    ids = [f"req-{i}" for i in range(25)]
    r = served.client.post("/v1/models/churn/predict", json={"instances": rows, "ids": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ids"] == ids
    assert len(body["predictions"]) == 25 and len(body["probabilities"]) == 25
    assert all(abs(sum(p) - 1) < 1e-9 for p in body["probabilities"])
    assert served.app.state.writer.flush(10)
    log = PredictionLogReader(env.artifacts, "churn").predictions()
    assert sorted(log["request_id"]) == sorted(ids)
    row = log.set_index("request_id").loc["req-7"]
    assert row["f_plan"] == rows[7]["plan"] and row["f_age"] == rows[7]["age"]
    assert row["model_version"] == 1 and row["role"] == "primary"
    assert row["prediction"] == str(body["predictions"][7])
    assert row["score"] == pytest.approx(body["probabilities"][7][1])
    assert list(row["probabilities"]) == pytest.approx(body["probabilities"][7])
    assert str(log["ts"].dtype) == "datetime64[us, UTC]"


def test_null_is_a_missing_value(served: Served) -> None:
    r = served.client.post(
        "/v1/models/churn/predict",
        json={"instances": [{"age": None, "income": 1.0, "plan": None, "region": "north"}]},
    )
    assert r.status_code == 200, r.text


def test_regression_model(served: Served, env: Env, regressor: Pipeline) -> None:
    register(env.store, env.artifacts, "spend", regressor)
    rows = [instance(i) for i in range(3)]
    r = served.client.post("/v1/models/spend/predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = regressor.predict(pd.DataFrame(rows)[NUMERIC + CATEGORICAL])
    np.testing.assert_allclose(body["predictions"], expected)
    assert "probabilities" not in body
    assert served.app.state.writer.flush(10)
    log = PredictionLogReader(env.artifacts, "spend").predictions()
    np.testing.assert_allclose(log.sort_values("request_id")["prediction"],
                               pd.Series(expected, index=body["ids"]).sort_index())


def test_model_info_health_and_metrics(served: Served) -> None:
    served.client.post("/v1/models/churn/predict", json={"instances": [instance()]})
    info = served.client.get("/v1/models/churn").json()
    assert info["champion"] == 1 and info["aliases"] == {"champion": 1}
    assert [v["version"] for v in info["versions"]] == [1]
    assert info["traffic"] == {"1": 1.0} and info["rollout"] is None and info["challengers"] == []
    assert served.client.get("/healthz").json() == {"status": "ok", "models": {"churn": 1}}
    assert served.metric("modelpilot_requests_total", model="churn", endpoint="predict", status="200") == 1
    assert served.metric("modelpilot_predict_latency_seconds_count", model="churn", version="1") == 1
    assert "/v1/models/{name}/predict" in served.client.get("/openapi.json").json()["paths"]


def test_feedback_accepts_known_ids_and_joins(served: Served, env: Env) -> None:
    r = served.client.post(
        "/v1/models/churn/predict",
        json={"instances": [instance(i) for i in range(4)], "ids": ["a", "b", "c", "d"]},
    )
    assert r.status_code == 200
    fb = served.client.post(
        "/v1/models/churn/feedback",
        json={"ids": ["a", "b", "zz"], "labels": [1, 0, 1], "rewards": [1.5, None, 0]},
    )
    assert fb.status_code == 202, fb.text  # "zz" may be another replica's: held, not refused
    assert fb.json() == {"accepted": 2, "held": 1, "held_ids": ["zz"]}
    assert served.app.state.writer.flush(10)
    joined = PredictionLogReader(env.artifacts, "churn").joined().set_index("request_id")
    assert joined.loc["a", "label"] == "1" and joined.loc["a", "reward"] == 1.5
    assert joined.loc["b", "label"] == "0" and pd.isna(joined.loc["b", "reward"])
    assert pd.isna(joined.loc["c", "label"])


def test_feedback_found_in_the_log_after_a_restart(env: Env) -> None:
    """Ids not in memory (a new replica) are looked up in the log with DuckDB."""
    import httpx

    from modelpilot.serving import create_app, start_in_thread

    first, url = start_in_thread(create_app(env.cfg, env.store, env.artifacts))
    with httpx.Client(base_url=url) as c:
        c.post("/v1/models/churn/predict", json={"instances": [instance()], "ids": ["old-1"]})
    first.stop()  # flushes the log
    second, url = start_in_thread(create_app(env.cfg, env.store, env.artifacts))
    try:
        with httpx.Client(base_url=url) as c:
            r = c.post("/v1/models/churn/feedback", json={"ids": ["old-1", "new"], "labels": [1, 0]})
            assert r.status_code == 202 and r.json() == {"accepted": 1, "held": 1, "held_ids": ["new"]}
    finally:
        second.stop()  # the held label is written at shutdown: acknowledged, never lost
    assert sorted(PredictionLogReader(env.artifacts, "churn").feedback()["request_id"]) == ["new", "old-1"]
