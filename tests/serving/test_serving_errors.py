"""Every bad request gets the right 4xx and a JSON error, is counted, and breaks nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from serving_helpers import SIGNATURE, Env, Served, instance, register
from sklearn.pipeline import Pipeline

from modelpilot.serving import PredictionLogReader

PREDICT = "/v1/models/churn/predict"
NAN_BODY = b'{"instances": [{"age": NaN, "income": 1.0, "plan": "pro", "region": "north"}, ' \
    b'{"age": 3, "income": Infinity, "plan": "pro", "region": "north"}]}'

SURROGATE_ID = b'{"instances": [{"age": 1, "income": 2, "plan": "pro", "region": "north"}], ' \
    b'"ids": ["\\ud800"]}'
SURROGATE_VALUE = b'{"instances": [{"age": 1, "income": 2, "plan": "\\udc00x", "region": "north"}]}'

# (description, request kwargs, status, error type, message fragment)
CASES: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("malformed json", {"content": b'{"instances": [', "url": PREDICT}, 400, "MalformedRequest",
     "not valid JSON"),
    ("empty body", {"content": b"", "url": PREDICT}, 400, "MalformedRequest", "empty"),
    ("not an object", {"json": [1, 2], "url": PREDICT}, 400, "MalformedRequest", "JSON object"),
    ("no instances", {"json": {"rows": []}, "url": PREDICT}, 422, "RequestError", "rows"),
    ("wrong type", {"json": {"instances": [{**instance(), "age": "old"}]}, "url": PREDICT},
     422, "RequestError", r"'age' \(type float.*instances \[0\]"),
    ("category as list", {"json": {"instances": [instance(), {**instance(), "plan": [1]}]},
     "url": PREDICT}, 422, "RequestError", r"'plan'.*instances \[1\]"),
    ("missing field", {"json": {"instances": [{"age": 1, "income": 2, "plan": "pro"}]},
     "url": PREDICT}, 422, "RequestError", r"missing field 'region' at instances \[0\]"),
    ("extra field", {"json": {"instances": [{**instance(), "zip": "123"}]}, "url": PREDICT},
     422, "RequestError", r"unknown field 'zip' at instances \[0\]"),
    ("NaN and Infinity", {"content": NAN_BODY, "url": PREDICT}, 422, "RequestError",
     r"'age' is NaN or infinite at instances \[0\].*'income' is NaN or infinite at instances \[1\]"),
    ("ids length", {"json": {"instances": [instance()], "ids": ["a", "b"]}, "url": PREDICT},
     422, "RequestError", "2 entries but there are 1 instances"),
    ("unknown model", {"json": {"instances": [instance()]}, "url": "/v1/models/nope/predict"},
     404, "ModelNotFound", "no model named 'nope'"),
    ("feedback bad labels", {"json": {"ids": ["x"], "labels": [1, 2]},
     "url": "/v1/models/churn/feedback"}, 422, "RequestError", "one label per id"),
    ("unknown route", {"json": {}, "url": "/v1/nothing"}, 404, "HTTPError", "Not Found"),
    ("lone surrogate in an id", {"content": SURROGATE_ID, "url": PREDICT}, 400, "MalformedRequest",
     "surrogates"),
    ("lone surrogate in a value", {"content": SURROGATE_VALUE, "url": PREDICT}, 400, "MalformedRequest",
     "surrogates"),
    ("lone surrogate in a label", {"content": b'{"ids": ["a"], "labels": ["\\ud800"]}',
     "url": "/v1/models/churn/feedback"}, 400, "MalformedRequest", "surrogates"),
    ("100k-deep JSON", {"content": b"[" * 100_000 + b"]" * 100_000, "url": PREDICT}, 400,
     "MalformedRequest", "not valid JSON"),
    ("100k-deep JSON, feedback", {"content": b'{"ids": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "url": "/v1/models/churn/feedback"}, 400, "MalformedRequest", "not valid JSON"),
    ("version >= 2**63", {"json": {}, "url": f"/v1/models/churn/versions/{2**63}/approve"}, 422,
     "RequestError", "less than or equal to 9223372036854775807"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_request(served: Served, case: tuple[str, dict[str, Any], int, str, str]) -> None:
    _, kwargs, status, type_name, fragment = case
    before = served.metric("modelpilot_errors_total", type=type_name, status=str(status))
    r = served.client.post(**kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["type"] == type_name
    assert __import__("re").search(fragment, error["message"]), error["message"]
    after = served.metric("modelpilot_errors_total", type=type_name, status=str(status))
    assert after == before + 1
    # the server still serves
    ok = served.client.post(PREDICT, json={"instances": [instance()]})
    assert ok.status_code == 200


def test_oversized_bodies_get_413(env: Env, tmp_path: Any) -> None:
    from serving_helpers import make_config

    from modelpilot.serving import create_app, start_in_thread

    cfg = make_config(tmp_path, max_body_bytes=100_000)
    handle, url = start_in_thread(create_app(cfg, env.store, env.artifacts))
    big = b'{"instances": [' + b",".join([b'{"age": 1}'] * 1_000_000) + b"]}"  # ~10 MB
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            r = c.post(PREDICT, content=big, headers={"content-type": "application/json"})
            assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"
            assert "max_body_bytes=100000" in r.json()["error"]["message"]

            def chunks() -> Any:  # no Content-Length: counted as it arrives
                for i in range(0, len(big), 65536):
                    yield big[i : i + 65536]

            r = c.post(PREDICT, content=chunks())
            assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"
            metrics = c.get("/metrics").text
            assert 'modelpilot_errors_total{status="413",type="PayloadTooLarge"} 2.0' in metrics
            assert c.post(PREDICT, json={"instances": [instance()]}).status_code == 200
    finally:
        handle.stop()


def test_unexpected_error_is_a_500_that_leaks_nothing(
    served: Served, env: Env, classifiers: list[Pipeline]
) -> None:
    # a version whose signature names a column the pipeline never saw: predict raises
    broken = [*SIGNATURE[:3], {"name": "secret_column_xyz", "type": "category"}]
    register(env.store, env.artifacts, "broken", classifiers[0], signature=broken)
    row = {**instance(), "secret_column_xyz": "a"}
    del row["region"]
    r = served.client.post("/v1/models/broken/predict", json={"instances": [row]})
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "InternalError"
    assert "region" not in r.text and "secret" not in r.text and "Traceback" not in r.text
    assert served.metric("modelpilot_errors_total", type="InternalError", status="500") == 1
    assert served.client.post(PREDICT, json={"instances": [instance()]}).status_code == 200


def test_no_logged_prediction_lost_among_errors(served: Served, env: Env) -> None:
    good = []
    for i in range(30):
        if i % 3 == 0:
            served.client.post(PREDICT, content=b"{oops")
            served.client.post(PREDICT, json={"instances": [{"age": "x"}]})
        r = served.client.post(PREDICT, json={"instances": [instance(i)], "ids": [f"g{i}"]})
        assert r.status_code == 200
        good.append(f"g{i}")
    served.stop()  # graceful shutdown flushes the log
    logged = PredictionLogReader(env.artifacts, "churn").predictions()["request_id"].tolist()
    assert sorted(logged) == sorted(good)


@pytest.mark.parametrize("key", ["../../store.db", "a//b.html", "./x.html", "a\\b.html", "%2E%2E/x"])
def test_invalid_backtest_artifact_keys_are_a_404(served: Served, key: str) -> None:
    # sent raw: httpx would otherwise resolve the dot segments itself
    r = served.client.send(httpx.Request("GET", served.url + "/ui/backtests/artifact/x", extensions={
        "target": f"/ui/backtests/artifact/{key}".encode()}))
    assert r.status_code == 404, (key, r.status_code)
    assert "no backtest report" in r.text


def test_model_names_are_safe_identifiers(tmp_path: Any) -> None:
    from modelpilot.config import PilotConfig
    from modelpilot.errors import ConfigError

    for bad in ["..", ".", "-churn", "a/b", "churn\\x", ""]:
        with pytest.raises(ConfigError, match="not a safe identifier"):
            PilotConfig.from_dict({"model": {"name": bad, "target": "y"}})
    assert PilotConfig.from_dict({"model": {"name": "churn-v2.1", "target": "y"}}).model.name == "churn-v2.1"
