"""Outbound webhooks against real receivers on 127.0.0.1: signed, filtered, retried, recorded."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from receivers import Receiver

from modelpilot.config import PilotConfig, WebhookConfig
from modelpilot.errors import ConfigError
from modelpilot.integrations.webhooks import (
    WebhookDispatcher,
    sign,
    start_cursors,
    verify_signature,
)
from modelpilot.store import Store

SECRET = "test-secret-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as s:
        yield s


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_HOOK_SECRET", SECRET)


def hook(url: str, **kw: Any) -> WebhookConfig:
    return WebhookConfig.model_validate({"name": kw.pop("name", "ops"), "url": url, "secret_env": "MP_HOOK_SECRET",
                                         **kw})


def dispatcher(store: Store, *hooks: WebhookConfig) -> WebhookDispatcher:
    d = WebhookDispatcher(list(hooks), store)
    start_cursors(store, [h.name for h in hooks])  # as Pilot.store does
    return d


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_signed_delivery_of_the_wanted_kinds_is_verified_and_recorded(
    store: Store, receiver: Callable[..., Receiver]
) -> None:
    r = receiver(SECRET.encode())
    d = dispatcher(store, hook(r.url))
    promoted = store.add_event("promoted", model="churn", subject="v2", reason="canary healthy",
                               numbers={"to_version": 2})
    store.add_event("tick", actor="controller")  # not in the default filter
    counts = d.pump()
    assert counts["delivered"] == 1 and counts["queued"] == 1
    assert len(r.received) == 1
    got = r.received[0]
    assert got["body"]["event"]["kind"] == "promoted"
    assert got["body"]["event"]["numbers"] == {"to_version": 2}
    assert got["headers"]["X-Modelpilot-Delivery"] == f"ops:{promoted.id}"
    [delivery] = store.deliveries()
    assert (delivery.status, delivery.attempts, delivery.http_status, delivery.event_id) == (
        "delivered", 1, 200, promoted.id)
    assert d.pump()["attempted"] == 0  # delivered once, never again


def test_a_receiver_with_another_secret_refuses_and_the_attempt_is_recorded(
    store: Store, receiver: Callable[..., Receiver]
) -> None:
    r = receiver(b"not-the-same-secret")
    d = dispatcher(store, hook(r.url))
    store.add_event("gate_rejected", model="churn", subject="v3")
    d.pump()
    assert r.received == [] and len(r.calls) == 1
    [delivery] = store.deliveries()
    assert (delivery.status, delivery.attempts, delivery.http_status) == ("pending", 1, 401)


def test_fails_twice_then_succeeds_with_exponential_backoff(store: Store, receiver: Callable[..., Receiver]) -> None:
    r = receiver(SECRET.encode(), script=[500, 503])
    d = dispatcher(store, hook(r.url, backoff=60, max_backoff=3600))
    store.add_event("rolled_back", model="churn", subject="v4")
    t0 = datetime.now(UTC)
    assert d.pump(t0)["pending"] == 1
    first = store.deliveries()[0]
    assert first.next_attempt_at - t0 == timedelta(seconds=60)
    assert d.pump(t0 + timedelta(seconds=59))["attempted"] == 0  # not due yet
    assert d.pump(t0 + timedelta(seconds=60))["pending"] == 1
    second = store.deliveries()[0]
    assert second.next_attempt_at - (t0 + timedelta(seconds=60)) == timedelta(seconds=120)  # doubled
    assert d.pump(t0 + timedelta(seconds=179))["attempted"] == 0
    assert d.pump(t0 + timedelta(seconds=180))["delivered"] == 1
    [done] = store.deliveries()
    assert (done.status, done.attempts, done.http_status) == ("delivered", 3, 200)
    assert len(r.calls) == 3 and len(r.received) == 1
    assert len({c["X-Modelpilot-Delivery"] for c in r.calls}) == 1  # one id across retries


def test_a_dead_receiver_ends_failed_after_max_attempts_in_bounded_time(store: Store) -> None:
    d = dispatcher(store, hook(dead_url(), max_attempts=3, backoff=1))
    store.add_event("approval_requested", model="churn", subject="v5")
    t0 = datetime.now(UTC)
    start = time.monotonic()
    for k in range(5):
        d.pump(t0 + timedelta(seconds=10 * k))
    assert time.monotonic() - start < 10
    [delivery] = store.deliveries()
    assert (delivery.status, delivery.attempts, delivery.http_status) == ("failed", 3, None)
    assert delivery.error and "ConnectError" in delivery.error


def test_a_hanging_receiver_never_blocks_the_caller(store: Store, receiver: Callable[..., Receiver]) -> None:
    r = receiver(SECRET.encode(), hang=3.0)
    d = dispatcher(store, hook(r.url, timeout=0.5))
    store.add_event("trigger_fired", model="churn", subject="performance_drop")
    start = time.monotonic()
    assert d.kick() is True
    assert d.kick() is False  # one drain at a time
    assert time.monotonic() - start < 0.5  # kick returns at once
    d.join(timeout=10)
    [delivery] = store.deliveries()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.error and "Timeout" in delivery.error


def test_filters_all_kinds_and_slack_format(store: Store, receiver: Callable[..., Receiver]) -> None:
    everything, slack = receiver(None), receiver(None)
    d = dispatcher(store, WebhookConfig(name="all", url=everything.url, events=["*"]),
                   WebhookConfig(name="chat", url=slack.url, format="slack", events=["gate_passed"]))
    store.add_event("tick", actor="controller")
    store.add_event("gate_passed", model="churn", subject="v6", reason="beats v5 by 0.02")
    d.pump()
    assert [x["body"]["event"]["kind"] for x in everything.received] == ["tick", "gate_passed"]
    [msg] = slack.received
    assert set(msg["body"]) == {"text"} and "gate passed" in msg["body"]["text"]
    assert "beats v5 by 0.02" in msg["body"]["text"]
    assert msg["headers"]["X-Modelpilot-Signature"] is None  # no secret_env: unsigned


def test_a_new_webhook_starts_at_the_newest_event(store: Store, receiver: Callable[..., Receiver]) -> None:
    store.add_event("promoted", model="churn", subject="v1")  # before the webhook existed
    r = receiver(SECRET.encode())
    d = dispatcher(store, hook(r.url))
    store.add_event("promoted", model="churn", subject="v2")
    d.pump()
    assert [x["body"]["event"]["subject"] for x in r.received] == ["v2"]


def test_signature_rejects_tampering_and_replays() -> None:
    body = b'{"event": 1}'
    stamp = int(time.time())
    good = sign(SECRET.encode(), stamp, body)
    assert verify_signature(SECRET.encode(), body, str(stamp), good)
    assert not verify_signature(SECRET.encode(), body + b" ", str(stamp), good)
    assert not verify_signature(SECRET.encode(), body, str(stamp - 3600), sign(SECRET.encode(), stamp - 3600, body))
    assert not verify_signature(SECRET.encode(), body, None, good)


def test_config_errors_name_the_fix(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MP_HOOK_SECRET")
    with pytest.raises(ConfigError, match="MP_HOOK_SECRET.*not set"):
        WebhookDispatcher([hook("http://127.0.0.1:9/x")], store)
    with pytest.raises(ConfigError, match="appear more than once"):
        PilotConfig.from_dict({"model": {"name": "m", "target": "y"},
                               "webhooks": [{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]})
    with pytest.raises(ConfigError, match="webhooks.0.url"):
        PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "webhooks": [{"name": "a", "url": "ftp://x"}]})


def test_an_operator_decision_over_http_is_sent_at_once(tmp_path: Path, receiver: Callable[..., Receiver]) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from modelpilot.artifacts import open_artifacts
    from modelpilot.auth import create_token
    from modelpilot.serving import create_app

    r = receiver(SECRET.encode())
    cfg = PilotConfig.model_validate({"model": {"name": "churn", "target": "y"}, "webhooks": [
        {"name": "ops", "url": r.url, "secret_env": "MP_HOOK_SECRET", "events": ["approval_decided"]}]})
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        for _ in range(2):
            store.register_version("churn", run_id=None, artifact_key="k", reference_key=None, signature=[],
                                   task="classification", classes=["0", "1"], metrics={}, lineage={})
        store.set_alias("churn", "champion", 1)
        store.request_approval("churn", 2)
        token = create_token(store, "alice", "operator")
        app = create_app(cfg, store, open_artifacts(str(tmp_path / "artifacts")))

        async def reject() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                return await client.post("/v1/models/churn/versions/2/reject", json={"comment": "too slow"},
                                         headers={"Authorization": f"Bearer {token}"})

        with ThreadPoolExecutor(1) as pool:  # not this thread: Playwright's loop may run on it (xdist)
            assert pool.submit(asyncio.run, reject()).result().status_code == 200
        app.state.webhooks.join(timeout=10)  # no controller runs: the route kicked the outbox itself
    [got] = r.received
    assert got["body"]["event"]["kind"] == "approval_decided" and got["body"]["event"]["actor"] == "alice"
    assert got["body"]["event"]["reason"] == "too slow"
