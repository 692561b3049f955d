"""The operator endpoints and protected predict over real HTTP, with tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_helpers import Env, instance, make_config, register
from sklearn.pipeline import Pipeline

from modelpilot.auth import create_token
from modelpilot.rollout.review import request_review
from modelpilot.serving import create_app, start_in_thread


@pytest.fixture
def two(env: Env, classifiers: list[Pipeline]) -> Env:
    register(env.store, env.artifacts, "churn", classifiers[1], champion=False)  # v2
    return env


def server(env: Env, cfg: Any = None) -> tuple[Any, httpx.Client]:
    app = create_app(cfg or env.cfg, env.store, env.artifacts)
    handle, url = start_in_thread(app)
    return handle, httpx.Client(base_url=url, timeout=30)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_missing_or_weak_tokens_change_nothing_and_are_logged(two: Env) -> None:
    viewer = create_token(two.store, "dashboard", "viewer")
    handle, client = server(two)
    try:
        for headers, status in [({}, 401), (bearer("mp_wrong"), 401), (bearer(viewer), 403)]:
            r = client.post("/v1/models/churn/promote", json={"version": 2}, headers=headers)
            assert r.status_code == status and r.json()["error"]["type"] in ("AuthError", "Forbidden")
            r = client.post("/v1/models/churn/rollback", headers=headers)
            assert r.status_code == status
        assert two.store.get_alias("churn", "champion") == 1
    finally:
        client.close()
        handle.stop()  # the failed attempts are aggregated: one row per client, kind and window
    failed = two.store.events(kind=["auth_failed", "auth_forbidden"])
    assert sorted((e.kind, e.numbers["count"], e.actor) for e in failed) == [
        ("auth_failed", 4, "anonymous"), ("auth_forbidden", 2, "dashboard"),
    ]
    assert all("mp_" not in (e.reason + (e.subject or "") + str(e.numbers)) for e in failed)


def test_promote_and_rollback_with_an_operator_token(two: Env) -> None:
    op = create_token(two.store, "alice", "operator")
    handle, client = server(two)
    try:
        r = client.post("/v1/models/churn/promote", json={"version": 2, "reason": "hotfix"}, headers=bearer(op))
        assert r.status_code == 200, r.text
        assert client.post("/v1/models/churn/predict", json={"instances": [instance()]}).json()["model_version"] == 2
        r = client.post("/v1/models/churn/rollback", json={"reason": "regression"}, headers=bearer(op))
        assert r.json()["action"] == "champion_restored" and r.json()["champion"] == 1
        assert client.post("/v1/models/churn/predict", json={"instances": [instance()]}).json()["model_version"] == 1
        moves = two.store.alias_history("churn", "champion")
        assert [e.actor for e in moves[:2]] == ["alice", "alice"]
        assert "regression" in moves[0].reason
        r = client.post("/v1/models/churn/promote", json={"version": "2"}, headers=bearer(op))
        assert r.status_code == 422
    finally:
        client.close()
        handle.stop()


def test_approval_flow_over_http(two: Env, tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    op = create_token(two.store, "bob", "operator")
    request_review(two.store, "churn", 2, champion=1, reason="retrain", numbers={"challenger": 0.9})
    assert two.store.get_version("churn", 2).status == "awaiting_approval"
    handle, client = server(two, cfg)
    try:
        url = "/v1/models/churn/versions/2/approve"
        assert client.post(url, json={"comment": "looks good"}).status_code == 401
        assert two.store.get_approval("churn", 2).status == "pending"
        r = client.post(url, json={"comment": "looks good"}, headers=bearer(op))
        assert r.status_code == 200 and r.json()["rollout"] == "promoted"
        approval = two.store.get_approval("churn", 2)
        assert (approval.status, approval.actor, approval.comment) == ("approved", "bob", "looks good")
        assert client.get("/v1/models/churn").json()["champion"] == 2
        again = client.post("/v1/models/churn/versions/2/reject", json={"comment": "late"}, headers=bearer(op))
        assert again.status_code == 409
    finally:
        client.close()
        handle.stop()


def test_predict_needs_a_viewer_token_and_feedback_a_labeler(two: Env, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, require_token_for_predict=True)
    viewer = create_token(two.store, "app", "viewer")
    labeler = create_token(two.store, "crm", "labeler")
    handle, client = server(two, cfg)
    try:
        body = {"instances": [instance()], "ids": ["a1"]}
        assert client.post("/v1/models/churn/predict", json=body).status_code == 401
        assert client.post("/v1/models/churn/predict", json=body, headers=bearer(viewer)).status_code == 200
        fb = {"ids": ["a1"], "labels": [1]}
        assert client.post("/v1/models/churn/feedback", json=fb).status_code == 401
        assert client.post("/v1/models/churn/feedback", json=fb, headers=bearer(viewer)).status_code == 403
        assert client.post("/v1/models/churn/feedback", json=fb, headers=bearer(labeler)).status_code == 200
    finally:
        client.close()
        handle.stop()
