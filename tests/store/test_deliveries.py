"""The webhook outbox in the store, on SQLite and PostgreSQL: idempotent queueing, claimed attempts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelpilot.errors import RequestError
from modelpilot.store import Store
from modelpilot.testing.store_suite import race


def test_queue_is_idempotent_per_webhook_and_event(store: Store) -> None:
    a = store.add_event("promoted", model="m", subject="v2")
    b = store.add_event("rolled_back", model="m", subject="v3")
    assert store.last_event_id() == b.id
    assert [e.id for e in store.events_after(a.id - 1)] == [a.id, b.id]
    assert store.queue_deliveries("ops", "http://r/1", [a, b]) == 2
    assert store.queue_deliveries("ops", "http://r/1", [a, b]) == 0
    assert store.queue_deliveries("chat", "http://r/2", [a]) == 1
    due = store.due_deliveries(["ops"], now=b.time + timedelta(seconds=1))
    assert [(d.webhook, d.event_id, d.attempts) for d in due] == [("ops", a.id, 0), ("ops", b.id, 0)]
    assert set(store.events_by_id([a.id, b.id, 10_000])) == {a.id, b.id}


def test_an_attempt_is_claimed_once_among_racing_processes(store: Store) -> None:
    event = store.add_event("promoted", model="m")
    store.queue_deliveries("ops", "http://r", [event])
    [d] = store.due_deliveries(["ops"], now=event.time)
    retry_at = event.time + timedelta(minutes=1)
    wins = race(4, lambda i: store.claim_delivery(d.id, d.attempts, retry_at))
    assert sorted(wins, key=str) == [False, False, False, True]
    store.record_attempt(d.id, status="pending", url="http://r", http_status=500, error="HTTP 500", duration_ms=3.0)
    assert store.due_deliveries(["ops"], now=event.time) == []  # waits for its retry time
    [again] = store.due_deliveries(["ops"], now=retry_at)
    assert (again.attempts, again.http_status, again.error) == (1, 500, "HTTP 500")
    assert store.claim_delivery(d.id, 1, retry_at)
    store.record_attempt(d.id, status="delivered", url="http://r", http_status=204, error=None, duration_ms=2.0)
    [done] = store.deliveries(status="delivered")
    assert done.delivered_at is not None and done.attempts == 2
    assert not store.claim_delivery(d.id, 2, retry_at)  # delivered: never claimed again
    assert store.delivery_counts() == {("ops", "delivered"): 1}
    with pytest.raises(RequestError, match="delivery status must be one of"):
        store.deliveries(status="sent")
