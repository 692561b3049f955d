"""The audit log (events) and human approvals of model versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelpilot.errors import Conflict, ModelNotFound
from modelpilot.store import schema as t
from modelpilot.store._base import StoreBase, event_record, storable_version, utcnow
from modelpilot.store.records import ApprovalRecord, EventRecord

_E = t.events.c
_P = t.approvals.c


def _approval(row: sa.Row[Any]) -> ApprovalRecord:
    return ApprovalRecord(**row._mapping)


class AuditMixin(StoreBase):
    # ------------------------------------------------------------------ events

    def add_event(
        self,
        kind: str,
        *,
        model: str | None = None,
        subject: str | None = None,
        actor: str = "system",
        reason: str = "",
        numbers: Mapping[str, Any] | None = None,
    ) -> EventRecord:
        """Append an event to the audit log.

        Args:
            kind: what happened, e.g. ``"drift_detected"``, ``"retrain_started"``.
            model: the model concerned, if any.
            subject: what within the model (an alias, ``"v3"``, a rollout…).
            actor: who decided: ``"system"``, ``"controller"`` or a user name.
            reason: why, in words.
            numbers: the figures behind the decision (JSON-serialisable).

        Returns:
            The stored event.
        """
        with self._db.write() as conn:
            return self._add_event(
                conn,
                kind,
                model=model,
                subject=subject,
                actor=actor,
                reason=reason,
                numbers=numbers,
            )

    def event_kinds(self) -> list[str]:
        """Every event kind the audit log holds, sorted."""
        with self._db.read() as conn:
            return sorted(conn.execute(sa.select(t.events.c.kind).distinct()).scalars())

    def events(
        self,
        model: str | None = None,
        kind: str | Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[EventRecord]:
        """Events matching every filter given, newest first.

        Args:
            kind: one kind or a list of kinds.
            since: only events at or after this time.
            until: only events before this time.
        """
        where: list[Any] = []
        if model is not None:
            where.append(_E.model == model)
        if isinstance(kind, str):
            where.append(_E.kind == kind)
        elif kind is not None:
            where.append(_E.kind.in_(list(kind)))
        if since is not None:
            where.append(_E.time >= since)
        if until is not None:
            where.append(_E.time < until)
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.events)
                .where(sa.true(), *where)
                .order_by(_E.time.desc(), _E.id.desc())
                .limit(limit)
            ).all()
        return [event_record(r) for r in rows]

    # ------------------------------------------------------------------ approvals

    def request_approval(self, model: str, version: int) -> ApprovalRecord:
        """Ask a human to approve ``version``; logs ``approval_requested`` the first time.

        Idempotent: when the version already has an approval (pending or decided), that
        one is returned unchanged.

        Raises:
            ModelNotFound: no such model or version.
        """
        with self._db.write() as conn:
            self._lock_model(conn, model)
            existing = self._approval(conn, model, version)
            if existing is not None:
                return existing
            found = storable_version(version) and conn.execute(
                sa.select(t.model_versions.c.id).where(
                    t.model_versions.c.model == model, t.model_versions.c.version == version
                )
            ).first()
            if not found:
                raise ModelNotFound(f"model {model!r} has no version {version} to approve")
            conn.execute(
                t.approvals.insert().values(
                    model=model, version=version, status="pending", requested_at=utcnow()
                )
            )
            self._add_event(
                conn,
                "approval_requested",
                model=model,
                subject=f"v{version}",
                numbers={"version": version},
            )
            record = self._approval(conn, model, version)
        assert record is not None  # written just above, in this transaction
        return record

    def decide_approval(
        self, model: str, version: int, approved: bool, actor: str, comment: str | None = None
    ) -> ApprovalRecord:
        """Approve or reject a pending approval and log ``approval_decided``, atomically.

        Raises:
            ModelNotFound: no approval was requested for that version.
            Conflict: it was already decided.
        """
        with self._db.write() as conn:
            self._lock_model(conn, model)
            current = self._approval(conn, model, version)
            if current is None:
                raise ModelNotFound(
                    f"no approval was requested for {model!r} v{version}; nothing to decide"
                )
            if current.status != "pending":
                raise Conflict(
                    f"the approval of {model!r} v{version} was already {current.status} by "
                    f"{current.actor} at {current.decided_at:%Y-%m-%d %H:%M:%S} UTC; "
                    "register a new version to ask again"
                )
            status = "approved" if approved else "rejected"
            conn.execute(
                t.approvals.update()
                .where(_P.model == model, _P.version == version)
                .values(status=status, decided_at=utcnow(), actor=actor, comment=comment)
            )
            self._add_event(
                conn,
                "approval_decided",
                model=model,
                subject=f"v{version}",
                actor=actor,
                reason=comment or "",
                numbers={"version": version, "approved": approved},
            )
            record = self._approval(conn, model, version)
        assert record is not None  # updated just above, in this transaction
        return record

    def pending_approvals(self, model: str | None = None) -> list[ApprovalRecord]:
        """Approvals still waiting for a decision, oldest first."""
        where = [_P.status == "pending"] + ([_P.model == model] if model is not None else [])
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.approvals).where(*where).order_by(_P.requested_at, _P.id)
            ).all()
        return [_approval(r) for r in rows]

    def get_approval(self, model: str, version: int) -> ApprovalRecord | None:
        """The approval of a version, or None when none was requested."""
        with self._db.read() as conn:
            return self._approval(conn, model, version)

    def _approval(self, conn: Connection, model: str, version: int) -> ApprovalRecord | None:
        if not storable_version(version):
            return None
        row = conn.execute(
            sa.select(t.approvals).where(_P.model == model, _P.version == version)
        ).first()
        return None if row is None else _approval(row)
