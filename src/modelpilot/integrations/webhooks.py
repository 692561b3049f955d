"""Outbound webhooks: events of the audit log POSTed to the URLs in ``pilot.yaml``.

The audit log is the source: every decision is an event in the store before anything is
sent, so a webhook is an outbox drained after the fact and never part of a decision.

* **queue** — for each configured webhook, the events after its cursor (kept in the store,
  namespace ``webhooks``) whose kind it wants become ``pending`` delivery rows. The cursor
  starts at the newest event the first time a webhook is seen: a new webhook receives what
  happens from then on, not the whole history.
* **send** — each due delivery is claimed (compare-and-set on its attempt count, so two
  processes never send the same attempt), POSTed with the request ``timeout``, and recorded:
  ``delivered`` on a 2xx answer, else ``pending`` again after ``backoff × 2^(attempt-1)``
  (capped by ``max_backoff``), or ``failed`` once ``max_attempts`` are spent.
* **where** — the controller calls :meth:`WebhookDispatcher.kick` after every tick: a
  background thread drains the outbox for at most ``budget`` seconds, so a dead or slow
  receiver never delays a tick. A CLI command that wrote events drains once, bounded, when
  it exits (:meth:`~modelpilot.pilot.Pilot.close`).

Each request carries the headers ``X-Modelpilot-Event`` (the kind),
``X-Modelpilot-Delivery`` (stable across retries: ``<webhook>:<event id>``, for receivers
to drop duplicates), and with ``secret_env`` set, ``X-Modelpilot-Timestamp`` (Unix seconds)
and ``X-Modelpilot-Signature: v1=<hex>``: HMAC-SHA256 with the secret over
``"<timestamp>.<body>"``. :func:`verify_signature` is the receiver's side.

>>> sig = sign(b"s3cret", 1700000000, b'{"a":1}')
>>> verify_signature(b"s3cret", b'{"a":1}', "1700000000", sig, now=1700000010)
True
>>> verify_signature(b"s3cret", b'{"a":2}', "1700000000", sig, now=1700000010)
False
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from modelpilot.config import WebhookConfig
from modelpilot.errors import ConfigError, Conflict
from modelpilot.store import DeliveryRecord, EventRecord, Store

log = logging.getLogger(__name__)

NAMESPACE = "webhooks"
SIGNATURE_HEADER = "X-Modelpilot-Signature"
TIMESTAMP_HEADER = "X-Modelpilot-Timestamp"
EVENT_HEADER = "X-Modelpilot-Event"
DELIVERY_HEADER = "X-Modelpilot-Delivery"
#: how old a signed timestamp a receiver accepts by default (replays older than it fail)
SIGNATURE_TOLERANCE = 300.0


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value of ``body`` sent at ``timestamp``: ``v1=<hex HMAC-SHA256>``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    secret: bytes, body: bytes, timestamp: str | None, signature: str | None, *,
    tolerance: float = SIGNATURE_TOLERANCE, now: float | None = None,
) -> bool:
    """Whether a request's signature headers prove it came from modelpilot, recently.

    Args:
        secret: the shared secret (the value of the webhook's ``secret_env`` variable).
        body: the raw request body, byte for byte.
        timestamp: the ``X-Modelpilot-Timestamp`` header.
        signature: the ``X-Modelpilot-Signature`` header.
        tolerance: the oldest timestamp accepted, in seconds (a replay defence).
        now: the current Unix time (default the clock).
    """
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def event_document(event: EventRecord) -> dict[str, Any]:
    """The JSON form of an event (what ``modelpilot events --json`` prints per event)."""
    return {"id": event.id, "time": event.time.isoformat(), "model": event.model, "kind": event.kind,
            "subject": event.subject, "actor": event.actor, "reason": event.reason, "numbers": event.numbers}


def payload(hook: WebhookConfig, event: EventRecord) -> bytes:
    """The request body of ``event`` for ``hook`` in its ``format``."""
    if hook.format == "slack":
        where = " ".join(p for p in (event.model, event.subject) if p)
        text = f"*{event.kind.replace('_', ' ')}*" + (f" — {where}" if where else "")
        if event.reason:
            text += f"\n{event.reason}"
        return orjson.dumps({"text": text + f"\n_by {event.actor} at {event.time:%Y-%m-%d %H:%M:%S} UTC_"})
    return orjson.dumps({"webhook": hook.name, "delivery": f"{hook.name}:{event.id}", "event": event_document(event)})


def wanted(hook: WebhookConfig, kind: str) -> bool:
    return "*" in hook.events or kind in hook.events


def backoff_delay(hook: WebhookConfig, attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th failed attempt (1-based).

    >>> hook = WebhookConfig(name="h", url="http://x", backoff=10, max_backoff=60)
    >>> [backoff_delay(hook, k) for k in (1, 2, 3, 4, 5)]
    [10.0, 20.0, 40.0, 60.0, 60.0]
    """
    return float(min(hook.max_backoff, hook.backoff * 2.0 ** (attempt - 1)))


def _secret(hook: WebhookConfig) -> bytes | None:
    if hook.secret_env is None:
        return None
    value = os.environ.get(hook.secret_env)
    if not value:
        raise ConfigError(
            f"webhook {hook.name!r}: the environment variable {hook.secret_env} (webhooks.secret_env) is not "
            f"set or empty: export the signing secret in it, or remove secret_env to send unsigned requests"
        )
    return value.encode()


def start_cursors(store: Store, names: Sequence[str]) -> None:
    """Give each webhook seen for the first time a cursor at the newest event.

    Called when a :class:`~modelpilot.pilot.Pilot` opens its store, so the events of that
    command (a ``train``, a ``promote``) are the first the webhook receives.
    """
    for name in names:
        if store.get_state_record(NAMESPACE, name) is None:
            with contextlib.suppress(Conflict):  # another process started it first
                store.put_state(NAMESPACE, name, {"cursor": store.last_event_id()}, expected_revision=0)


class WebhookDispatcher:
    """Queues and sends the deliveries of ``hooks``; thread-safe, one background sender.

    Args:
        hooks: the configured webhooks (``pilot.yaml`` ``webhooks:``).
        store: the metadata store (events, the outbox, the cursors).
        budget: the most seconds one drain spends sending; what is left waits for the next.

    Raises:
        ConfigError: a webhook's ``secret_env`` variable is not set.
    """

    def __init__(self, hooks: Sequence[WebhookConfig], store: Store, *, budget: float = 30.0) -> None:
        self.hooks = {h.name: h for h in hooks}
        self.secrets = {h.name: _secret(h) for h in hooks}
        self.store = store
        self.budget = budget
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the outbox

    def queue(self) -> int:
        """Turn the new events each webhook wants into pending deliveries; returns how many."""
        start_cursors(self.store, list(self.hooks))
        added = 0
        for name, hook in self.hooks.items():
            record = self.store.get_state_record(NAMESPACE, name)
            cursor = int(record.value.get("cursor", 0)) if record else 0
            revision = record.revision if record else 0
            while True:
                events = self.store.events_after(cursor, limit=500)
                if not events:
                    break
                added += self.store.queue_deliveries(name, hook.url, [e for e in events if wanted(hook, e.kind)])
                cursor = events[-1].id
                try:
                    revision = self.store.put_state(NAMESPACE, name, {"cursor": cursor}, expected_revision=revision)
                except Conflict:  # another process moved the cursor; its rows and ours are the same rows
                    break
        return added

    def send_due(self, now: datetime | None = None, *, deadline: float | None = None) -> list[DeliveryRecord]:
        """Attempt every due delivery once (until ``deadline``, a ``time.monotonic()`` value).

        Returns:
            The deliveries as recorded after their attempt.
        """
        import httpx

        done: list[DeliveryRecord] = []
        due = self.store.due_deliveries(list(self.hooks), now=now, limit=200)
        if not due:
            return done
        with httpx.Client(follow_redirects=False, headers={"User-Agent": "modelpilot-webhooks"}) as client:
            events = self.store.events_by_id([d.event_id for d in due])
            for delivery in due:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                event = events.get(delivery.event_id)
                if event is None:
                    continue
                done.extend(self._attempt(client, delivery, event, now or datetime.now(UTC)))
        return done

    def _attempt(self, client: Any, delivery: DeliveryRecord, event: EventRecord, now: datetime) -> list[DeliveryRecord]:
        hook = self.hooks[delivery.webhook]
        attempt = delivery.attempts + 1
        retry_at = now + timedelta(seconds=backoff_delay(hook, attempt))
        if not self.store.claim_delivery(delivery.id, delivery.attempts, retry_at):
            return []  # another process is sending this attempt
        body = payload(hook, event)
        headers = {"Content-Type": "application/json", EVENT_HEADER: event.kind,
                   DELIVERY_HEADER: f"{hook.name}:{event.id}"}
        secret = self.secrets[hook.name]
        if secret is not None:
            stamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(stamp)
            headers[SIGNATURE_HEADER] = sign(secret, stamp, body)
        started = time.perf_counter()
        code: int | None = None
        error: str | None = None
        try:
            response = client.post(hook.url, content=body, headers=headers, timeout=hook.timeout)
            code = response.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}: {response.text[:200]}"
        except Exception as exc:  # any failure to deliver is a failed attempt, never an error of the loop
            error = f"{type(exc).__name__}: {exc}"[:500]
        ms = (time.perf_counter() - started) * 1000.0
        status = "delivered" if error is None else ("failed" if attempt >= hook.max_attempts else "pending")
        if error is not None:
            log.warning("webhook %s: attempt %d of event %d (%s) failed: %s", hook.name, attempt, event.id,
                        event.kind, error)
        self.store.record_attempt(delivery.id, status=status, url=hook.url, http_status=code, error=error,
                                  duration_ms=ms)
        return self.store.deliveries(event_id=event.id, webhook=hook.name, limit=1)

    def pump(self, now: datetime | None = None, *, budget: float | None = None) -> dict[str, int]:
        """Queue new events, then send what is due within ``budget`` seconds.

        Returns:
            ``{"queued", "attempted", "delivered", "failed", "pending"}`` counts of this pump.
        """
        deadline = time.monotonic() + (self.budget if budget is None else budget)
        queued = self.queue()
        sent = self.send_due(now, deadline=deadline)
        counts = {"queued": queued, "attempted": len(sent)}
        for status in ("delivered", "failed", "pending"):
            counts[status] = sum(1 for d in sent if d.status == status)
        return counts

    # ------------------------------------------------------------------ in the background

    def kick(self) -> bool:
        """Drain the outbox in a background thread unless one is running; never blocks.

        Returns:
            Whether a new drain was started.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._thread = threading.Thread(target=self._drain, name="modelpilot-webhooks", daemon=True)
            self._thread.start()
            return True

    def _drain(self) -> None:
        try:
            self.pump()
        except Exception:  # the outbox keeps everything: the next kick tries again
            log.exception("webhook delivery failed; the next tick tries again")

    def join(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` seconds) for a running background drain."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
