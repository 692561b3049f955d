"""The webhook outbox: which events each webhook must receive, and every attempt.

A delivery row is written before the first attempt (``pending``); each attempt is claimed
with a compare-and-set on ``attempts`` so that two processes draining the same outbox
never send the same attempt twice, then recorded as ``delivered``, ``failed`` (no attempt
left) or ``pending`` again with the time of the next try. The sending itself is
:mod:`modelpilot.integrations.webhooks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from modelpilot.store import schema as t
from modelpilot.store._base import StoreBase, check_choice, event_record, utcnow
from modelpilot.store.records import DeliveryRecord, EventRecord

_D = t.webhook_deliveries.c
_E = t.events.c
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _delivery(row: sa.Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(**row._mapping)


class DeliveriesMixin(StoreBase):
    def last_event_id(self) -> int:
        """The id of the newest event (0 when the audit log is empty)."""
        with self._db.read() as conn:
            return int(conn.scalar(sa.select(sa.func.max(_E.id))) or 0)

    def events_after(self, after_id: int, limit: int = 500) -> list[EventRecord]:
        """Events with an id above ``after_id``, oldest first (an outbox cursor reads them)."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.events).where(_E.id > after_id).order_by(_E.id).limit(limit)
            ).all()
        return [event_record(r) for r in rows]

    def events_by_id(self, ids: Sequence[int]) -> dict[int, EventRecord]:
        """The events with these ids (missing ids are left out)."""
        if not ids:
            return {}
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.events).where(_E.id.in_(list(ids)))).all()
        return {r.id: event_record(r) for r in rows}

    def queue_deliveries(self, webhook: str, url: str, events: Sequence[EventRecord]) -> int:
        """Add a pending delivery of each event to ``webhook``, due since the event; idempotent.

        Returns:
            How many deliveries were new.
        """
        if not events:
            return 0
        now = utcnow()
        values = [
            {"webhook": webhook, "event_id": e.id, "kind": e.kind, "model": e.model, "url": url,
             "status": "pending", "attempts": 0, "next_attempt_at": e.time, "created_at": now}
            for e in events
        ]
        with self._db.write() as conn:
            added = conn.execute(
                self._db.insert(t.webhook_deliveries)
                .values(values)
                .on_conflict_do_nothing(index_elements=["webhook", "event_id"])
                .returning(_D.id)  # rowcount of a multi-row insert is -1 on psycopg
            ).all()
        return len(added)

    def due_deliveries(
        self, webhooks: Sequence[str], now: datetime | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """Pending deliveries to these webhooks whose next attempt is due, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.webhook_deliveries)
                .where(_D.status == "pending", _D.webhook.in_(list(webhooks)),
                       _D.next_attempt_at <= (now or utcnow()))
                .order_by(_D.next_attempt_at, _D.id)
                .limit(limit)
            ).all()
        return [_delivery(r) for r in rows]

    def claim_delivery(self, delivery_id: int, attempts: int, retry_at: datetime) -> bool:
        """Take attempt ``attempts + 1`` of a pending delivery; False if another process did.

        ``retry_at`` is stored at once, so an attempt whose process dies is retried then.
        """
        with self._db.write() as conn:
            result = conn.execute(
                t.webhook_deliveries.update()
                .where(_D.id == delivery_id, _D.attempts == attempts, _D.status == "pending")
                .values(attempts=attempts + 1, next_attempt_at=retry_at)
            )
        return int(result.rowcount or 0) == 1

    def record_attempt(
        self, delivery_id: int, *, status: str, url: str, http_status: int | None, error: str | None,
        duration_ms: float,
    ) -> None:
        """Record how the claimed attempt ended: ``delivered``, ``pending`` (retry) or ``failed``."""
        check_choice("a delivery status", status, DELIVERY_STATUSES)
        values: dict[str, Any] = {"status": status, "url": url, "http_status": http_status, "error": error,
                                  "duration_ms": duration_ms}
        if status == "delivered":
            values["delivered_at"] = utcnow()
        with self._db.write() as conn:
            conn.execute(t.webhook_deliveries.update().where(_D.id == delivery_id).values(**values))

    def deliveries(
        self, webhook: str | None = None, status: str | None = None, event_id: int | None = None,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        """Deliveries matching every filter given, newest first."""
        where: list[Any] = []
        if webhook is not None:
            where.append(_D.webhook == webhook)
        if status is not None:
            check_choice("a delivery status", status, DELIVERY_STATUSES)
            where.append(_D.status == status)
        if event_id is not None:
            where.append(_D.event_id == event_id)
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.webhook_deliveries).where(sa.true(), *where)
                .order_by(_D.id.desc()).limit(limit)
            ).all()
        return [_delivery(r) for r in rows]

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """How many deliveries each webhook has in each status: ``{(webhook, status): n}``."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(_D.webhook, _D.status, sa.func.count()).group_by(_D.webhook, _D.status)
            ).all()
        return {(str(w), str(s)): int(n) for w, s, n in rows}
