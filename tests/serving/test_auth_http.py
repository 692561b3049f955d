"""Authentication over real HTTP: lockout, aggregated audit rows, closed routes, labelers,
dashboard sessions and forms (CSRF token, Origin check).

Each test starts the real app under uvicorn on a free port (``start_in_thread``) over a real
SQLite store and artifact folder, and talks to it with httpx like any client.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from serving_helpers import instance, make_config, register

from modelpilot.artifacts import open_artifacts
from modelpilot.auth import create_token, hash_token
from modelpilot.auth.sessions import NAMESPACE
from modelpilot.serving import create_app, start_in_thread
from modelpilot.store import Store


@dataclass
class Server:
    app: Any
    url: str
    client: httpx.Client
    store: Store
    stop: Callable[[], None]

    def new_client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


@pytest.fixture
def serve(tmp_path: Path, classifiers: list[Any]) -> Iterator[Callable[..., Server]]:
    """``serve(**serving)``: the app over one project folder (model churn v1), on a free port."""
    running: list[tuple[Any, httpx.Client, Store]] = []

    def start(**serving: Any) -> Server:
        cfg = make_config(tmp_path, **serving)
        store = Store.open(cfg.store_url)
        artifacts = open_artifacts(cfg.artifacts_url)
        if not store.list_models():
            register(store, artifacts, "churn", classifiers[0])
        app = create_app(cfg, store, artifacts)
        handle, url = start_in_thread(app)
        client = httpx.Client(base_url=url, timeout=30)
        running.append((handle, client, store))

        def stop() -> None:
            if handle.thread.is_alive():
                handle.stop()

        return Server(app, url, client, store, stop)

    yield start
    for handle, client, store in running:
        client.close()
        if handle.thread.is_alive():
            handle.stop()
        store.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _failed_rows(store: Store) -> list[Any]:
    return list(reversed(store.events(kind=["auth_failed", "auth_forbidden"], limit=10_000)))


# ---------------------------------------------------------------------- lockout and audit rows


def test_300_wrong_tokens_lock_the_client_out_and_the_audit_log_gets_two_rows(serve: Callable[..., Server]) -> None:
    server = serve(require_token_for_predict=True)
    viewer = create_token(server.store, "dash", "viewer")
    statuses = [server.client.get("/v1/models/churn", headers=_bearer(f"mp_guess{i}")).status_code
                for i in range(300)]

    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    refused = server.client.get("/v1/models/churn", headers=_bearer(viewer))  # the right token
    assert refused.status_code == 429 and 250 <= int(refused.headers["Retry-After"]) <= 300
    assert "too many wrong tokens" in refused.json()["error"]["message"]
    # the lockout refuses the right token on every route, the dashboard included
    assert server.client.get("/ui/", headers=_bearer(viewer)).status_code == 429

    guard = server.app.state.auth.guard
    real = guard.clock
    guard.clock = lambda: real() + 301  # the lockout has ended
    ok = server.client.get("/v1/models/churn", headers=_bearer(viewer))
    assert ok.status_code == 200 and ok.json()["champion"] == 1

    server.stop()  # the server writes its pending audit rows when it stops
    rows = _failed_rows(server.store)
    assert [r.kind for r in rows] == ["auth_failed", "auth_failed"]
    first, second = rows
    assert first.numbers["count"] == 10 and first.numbers["locked_out_seconds"] == 300
    assert first.numbers["reasons"] == {"unknown or revoked token": 10} and "locked out for 300 s" in first.reason
    assert second.numbers["count"] == 292 and second.numbers["reasons"] == {"refused while locked out": 292}
    assert all(r.subject == "client 127.0.0.1" for r in rows)
    assert all("mp_" not in r.reason + str(r.numbers) for r in rows)  # no token in the audit log


def test_missing_tokens_are_counted_in_one_row_and_never_lock_out(serve: Callable[..., Server]) -> None:
    server = serve(require_token_for_predict=True)
    viewer = create_token(server.store, "dash", "viewer")
    assert {server.client.get("/metrics").status_code for _ in range(50)} == {401}
    assert server.client.get("/metrics", headers=_bearer(viewer)).status_code == 200

    server.stop()
    (row,) = _failed_rows(server.store)
    assert row.numbers["count"] == 50 and row.numbers["reasons"] == {"missing token": 50}
    assert row.numbers["locked_out_seconds"] is None and row.numbers["actions"] == {"read /metrics": 50}


def test_the_login_form_counts_towards_the_lockout(serve: Callable[..., Server]) -> None:
    server = serve(auth_max_failures=3)
    operator = create_token(server.store, "ops", "operator")
    csrf = _form_token(server.client, "/ui/login")
    codes = [server.client.post("/ui/login", data={"token": f"mp_no{i}", "csrf": csrf}).status_code
             for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    r = server.client.post("/ui/login", data={"token": operator, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "modelpilot_session" not in r.headers.get("set-cookie", "")


# ---------------------------------------------------------------------- closed routes

DATA_ROUTES = [
    "/v1/models/churn", "/metrics", "/openapi.json", "/docs", "/redoc",
    "/ui", "/ui/", "/ui/models/churn", "/ui/models/churn/monitoring", "/ui/models/churn/cost",
    "/ui/monitoring", "/ui/cost", "/ui/events", "/ui/backtests", "/ui/runs/1",
    "/ui/backtests/file/x.html", "/ui/backtests/artifact/x.html",
]


def test_require_token_for_predict_closes_every_route_that_reveals_project_data(serve: Callable[..., Server]) -> None:
    server = serve(require_token_for_predict=True)
    viewer = create_token(server.store, "dash", "viewer")
    for path in DATA_ROUTES:
        r = server.client.get(path, follow_redirects=False)
        assert r.status_code == 401, path
        echoed = r.text.replace(path, "").replace(quote(path, safe=""), "")
        assert "churn" not in echoed, path  # nothing of the project (but the path asked for)
    assert server.client.post("/v1/models/churn/predict", json={"instances": [instance()]}).status_code == 401
    assert server.client.post("/v1/models/churn/feedback", json={"ids": ["a"], "labels": [1]}).status_code == 401
    assert server.client.post("/v1/models/churn/promote", json={"version": 1}).status_code == 401
    # still open: health, the login form, the dashboard's static files
    assert server.client.get("/healthz").status_code == 200
    assert server.client.get("/ui/login").status_code == 200
    assert server.client.get("/ui/static/ui.css").status_code == 200

    for path in DATA_ROUTES:  # with a viewer token: the page, a redirect, or "no such run/report"
        assert server.client.get(path, headers=_bearer(viewer)).status_code in (200, 307, 404), path
    body = server.client.get("/v1/models/churn", headers=_bearer(viewer)).json()
    assert body["champion"] == 1
    predicted = server.client.post("/v1/models/churn/predict", json={"instances": [instance()]}, headers=_bearer(viewer))
    assert predicted.status_code == 200


def test_without_require_token_for_predict_the_data_routes_stay_open(serve: Callable[..., Server]) -> None:
    server = serve()
    create_token(server.store, "dash", "viewer")
    for path in ("/v1/models/churn", "/metrics", "/openapi.json", "/ui/", "/ui/models/churn"):
        assert server.client.get(path).status_code == 200, path


# ---------------------------------------------------------------------- who may label


def _predict_one(client: httpx.Client, headers: dict[str, str] | None = None) -> str:
    r = client.post("/v1/models/churn/predict", json={"instances": [instance()]}, headers=headers or {})
    assert r.status_code == 200, r.text
    return str(r.json()["ids"][0])


def _label(client: httpx.Client, rid: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/v1/models/churn/feedback", json={"ids": [rid], "labels": [1]}, headers=headers or {})


def test_feedback_is_open_before_the_first_token_and_needs_a_labeler_after(serve: Callable[..., Server]) -> None:
    first = serve()
    rid = _predict_one(first.client)
    assert _label(first.client, rid).status_code == 200  # the embedded first hour: no token yet
    first.stop()

    store = first.store
    tokens = {role: create_token(store, role, role) for role in ("viewer", "labeler", "operator")}
    server = serve()
    rid = _predict_one(server.client)  # predict stays open (require_token_for_predict is off)
    assert _label(server.client, rid).status_code == 401
    r = _label(server.client, rid, _bearer(tokens["viewer"]))
    assert r.status_code == 403 and "needs labeler" in r.json()["error"]["message"]
    assert _label(server.client, rid, _bearer(tokens["labeler"])).status_code == 200
    assert _label(server.client, rid, _bearer(tokens["operator"])).status_code == 200
    # a labeler can label, not promote
    r = server.client.post("/v1/models/churn/promote", json={"version": 1}, headers=_bearer(tokens["labeler"]))
    assert r.status_code == 403 and "needs operator" in r.json()["error"]["message"]


def test_require_token_for_feedback_false_keeps_feedback_open(serve: Callable[..., Server]) -> None:
    server = serve(require_token_for_feedback=False)
    create_token(server.store, "ops", "operator")
    rid = _predict_one(server.client)
    assert _label(server.client, rid).status_code == 200


# ---------------------------------------------------------------------- dashboard sessions and forms


def _form_token(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, f"no form token on {path}"
    return match.group(1)


def _awaiting(store: Store) -> int:
    champion = store.get_version("churn", 1)
    rec = store.register_version(
        "churn", run_id=champion.run_id, artifact_key=champion.artifact_key,
        reference_key=champion.reference_key, signature=champion.signature, task=champion.task,
        classes=champion.classes, metrics=champion.metrics, lineage={"parent_version": 1}, cost=champion.cost,
        status="awaiting_approval", description="waiting for a person",
    )
    store.request_approval("churn", rec.version)
    return rec.version


def _log_in(client: httpx.Client, token: str) -> httpx.Response:
    csrf = _form_token(client, "/ui/login")
    return client.post("/ui/login", data={"token": token, "next": "/ui/models/churn", "csrf": csrf},
                       follow_redirects=False)


def test_the_cookie_holds_a_session_id_stored_hashed_and_logout_ends_it(serve: Callable[..., Server]) -> None:
    server = serve()
    operator = create_token(server.store, "ops", "operator")
    r = _log_in(server.client, operator)
    assert r.status_code == 303
    session = server.client.cookies["modelpilot_session"]
    assert session != operator and operator not in r.headers["set-cookie"]
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    stored = server.store.list_state(NAMESPACE)
    assert list(stored) == [hash_token(session)]  # only the id's hash is kept
    assert session not in str(stored) and operator not in str(stored)
    assert "ops (operator)" in server.client.get("/ui/models/churn").text

    copied = server.new_client(cookies={"modelpilot_session": session})
    assert "ops (operator)" in copied.get("/ui/").text  # a copy of the cookie works ... until logout
    csrf = _form_token(server.client, "/ui/")
    assert server.client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert server.store.list_state(NAMESPACE) == {}
    assert "ops (operator)" not in copied.get("/ui/").text
    version = _awaiting(server.store)
    refused = copied.post(f"/ui/models/churn/versions/{version}/approve",
                          data={"csrf": _form_token(copied, "/ui/login")}, follow_redirects=False)
    assert refused.status_code == 401
    assert server.store.get_approval("churn", version).status == "pending"
    copied.close()


def test_an_expired_session_or_a_revoked_token_ends_the_login(serve: Callable[..., Server]) -> None:
    server = serve()
    operator = create_token(server.store, "ops", "operator")
    assert _log_in(server.client, operator).status_code == 303
    (key, value), = server.store.list_state(NAMESPACE).items()
    server.store.put_state(NAMESPACE, key, {**value, "expires_at": time.time() - 1})
    assert "ops (operator)" not in server.client.get("/ui/").text

    assert _log_in(server.client, operator).status_code == 303
    assert "ops (operator)" in server.client.get("/ui/").text
    server.store.revoke_token(server.store.list_tokens()[0].id)
    assert "ops (operator)" not in server.client.get("/ui/").text


def test_forms_without_the_form_token_or_from_another_origin_are_refused(serve: Callable[..., Server]) -> None:
    server = serve()
    operator = create_token(server.store, "ops", "operator")
    version = _awaiting(server.store)
    approve = f"/ui/models/churn/versions/{version}/approve"

    # log in: the form token is needed there too (no login CSRF)
    r = server.client.post("/ui/login", data={"token": operator}, follow_redirects=False)
    assert r.status_code == 403 and "modelpilot_session" not in server.client.cookies
    r = server.client.post("/ui/login", data={"token": operator, "csrf": _form_token(server.client, "/ui/login")},
                           headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "modelpilot_session" not in server.client.cookies
    assert _log_in(server.client, operator).status_code == 303

    page = server.client.get("/ui/models/churn").text
    assert ">Approve</button>" in page
    csrf = _form_token(server.client, "/ui/models/churn")
    attempts = [
        ({}, {}),                                                          # no form token
        ({"csrf": "0" * 64}, {}),                                          # a wrong one
        ({"csrf": csrf}, {"Origin": "https://evil.example"}),              # another site
        ({"csrf": csrf}, {"Origin": "null"}),                              # a sandboxed page
        ({"csrf": csrf}, {"Referer": "https://evil.example/page"}),        # another site, no Origin
        ({"csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for data, headers in attempts:
        r = server.client.post(approve, data={"comment": "x", **data}, headers=headers, follow_redirects=False)
        assert r.status_code == 403, (data, headers)
    assert server.store.get_approval("churn", version).status == "pending"
    assert server.store.get_alias("churn", "champion") == 1
    # the logout form is protected too: refused without the token, the session still works
    assert server.client.post("/ui/logout", follow_redirects=False).status_code == 403
    assert "ops (operator)" in server.client.get("/ui/").text

    # the same form from the dashboard's own page goes through
    r = server.client.post(approve, data={"comment": "ok", "csrf": csrf}, headers={"Origin": server.url},
                           follow_redirects=False)
    assert r.status_code == 303
    assert server.store.get_approval("churn", version).status == "approved"

    server.stop()
    forbidden = [r for r in _failed_rows(server.store) if r.kind == "auth_forbidden"]
    assert sum(r.numbers["count"] for r in forbidden) == 9 and len(forbidden) == 1
    assert forbidden[0].numbers["reasons"] == {"missing or wrong form token": 4, "form from a foreign origin": 5}


def test_a_bearer_token_needs_no_form_token_but_still_no_foreign_origin(serve: Callable[..., Server]) -> None:
    server = serve()
    operator = create_token(server.store, "ops", "operator")
    version = _awaiting(server.store)
    reject = f"/ui/models/churn/versions/{version}/reject"
    r = server.client.post(reject, headers={**_bearer(operator), "Origin": "https://evil.example"},
                           follow_redirects=False)
    assert r.status_code == 403 and server.store.get_approval("churn", version).status == "pending"
    r = server.client.post(reject, headers=_bearer(operator), follow_redirects=False)
    assert r.status_code == 303 and server.store.get_approval("churn", version).status == "rejected"


def test_allowed_origins_admits_a_proxy_origin(serve: Callable[..., Server]) -> None:
    server = serve(allowed_origins=["https://models.example.com"])
    operator = create_token(server.store, "ops", "operator")
    csrf = _form_token(server.client, "/ui/login")
    r = server.client.post("/ui/login", data={"token": operator, "csrf": csrf},
                           headers={"Origin": "https://models.example.com"}, follow_redirects=False)
    assert r.status_code == 303
