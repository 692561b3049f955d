"""Key/value state (controller, rollouts), monitoring reports and API tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from modelpilot.errors import Conflict, ModelNotFound, NotFound
from modelpilot.store import schema as t
from modelpilot.store._base import StoreBase, utcnow
from modelpilot.store.records import MonitoringReportRecord, TokenRecord

_S = t.state.c
_M = t.monitoring_reports.c
_T = t.tokens.c


@dataclass(frozen=True)
class StateRecord:
    namespace: str
    key: str
    value: dict[str, Any]
    revision: int  # 1 when first written, +1 per write
    updated_at: datetime


class StateMixin(StoreBase):
    # ------------------------------------------------------------------ state

    def get_state(self, namespace: str, key: str) -> dict[str, Any] | None:
        """The value stored under ``(namespace, key)``, or None."""
        record = self.get_state_record(namespace, key)
        return None if record is None else record.value

    def get_state_record(self, namespace: str, key: str) -> StateRecord | None:
        """The value with its revision (what ``put_state(expected_revision=...)`` needs)."""
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(t.state).where(_S.namespace == namespace, _S.key == key)
            ).first()
        return None if row is None else StateRecord(**row._mapping)

    def list_state(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Every key of a namespace and its value."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(_S.key, _S.value).where(_S.namespace == namespace).order_by(_S.key)
            ).all()
        return {k: v for k, v in rows}

    def put_state(
        self,
        namespace: str,
        key: str,
        value: Mapping[str, Any],
        expected_revision: int | None = None,
    ) -> int:
        """Store ``value`` under ``(namespace, key)``.

        Args:
            expected_revision: compare-and-set: the revision the stored value must have
                now (``0``: the key must not exist yet); None writes unconditionally.

        Returns:
            The new revision (1 for a new key).

        Raises:
            Conflict: the stored revision is not ``expected_revision``.
        """
        values = {"namespace": namespace, "key": key, "value": dict(value), "updated_at": utcnow()}
        with self._db.write() as conn:
            if expected_revision is None:
                stmt = self._db.insert(t.state).values(**values, revision=1)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["namespace", "key"],
                    set_={
                        "value": stmt.excluded.value,
                        "updated_at": stmt.excluded.updated_at,
                        "revision": _S.revision + 1,
                    },
                )
            elif expected_revision == 0:
                stmt = self._db.insert(t.state).values(**values, revision=1)
                stmt = stmt.on_conflict_do_nothing(index_elements=["namespace", "key"])
            else:
                stmt = (
                    t.state.update()
                    .where(
                        _S.namespace == namespace, _S.key == key, _S.revision == expected_revision
                    )
                    .values(
                        value=values["value"],
                        updated_at=values["updated_at"],
                        revision=_S.revision + 1,
                    )
                )
            revision = conn.execute(stmt.returning(_S.revision)).scalar_one_or_none()
            if revision is None:
                current = conn.execute(
                    sa.select(_S.revision).where(_S.namespace == namespace, _S.key == key)
                ).scalar_one_or_none()
                raise Conflict(
                    f"state {namespace}/{key} is at revision {current or 0}, not "
                    f"{expected_revision} as expected: it was changed meanwhile; re-read it "
                    "with get_state_record and retry"
                )
            return int(revision)

    def delete_state(self, namespace: str, key: str) -> bool:
        """Remove a key; True when it existed."""
        with self._db.write() as conn:
            done = conn.execute(t.state.delete().where(_S.namespace == namespace, _S.key == key))
            return done.rowcount > 0

    # ------------------------------------------------------------------ monitoring

    def add_monitoring_report(
        self,
        model: str,
        version: int | None,
        *,
        window_start: datetime | None,
        window_end: datetime | None,
        n_predictions: int,
        n_labelled: int,
        summary: Mapping[str, Any],
        details_key: str | None,
    ) -> int:
        """Record one monitoring window's result; returns the report id.

        Raises:
            ModelNotFound: no such model.
        """
        with self._db.write() as conn:
            if (
                conn.execute(sa.select(t.models.c.name).where(t.models.c.name == model)).first()
                is None
            ):
                raise ModelNotFound(f"no model named {model!r} to attach a monitoring report to")
            return int(
                conn.execute(
                    t.monitoring_reports.insert()
                    .values(
                        model=model,
                        version=version,
                        created_at=utcnow(),
                        window_start=window_start,
                        window_end=window_end,
                        n_predictions=int(n_predictions),
                        n_labelled=int(n_labelled),
                        summary=dict(summary),
                        details_key=details_key,
                    )
                    .returning(_M.id)
                ).scalar_one()
            )

    def monitoring_reports(
        self, model: str, since: datetime | None = None, limit: int = 1000
    ) -> list[MonitoringReportRecord]:
        """A model's monitoring reports, newest first."""
        where = [_M.model == model] + ([_M.created_at >= since] if since is not None else [])
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.monitoring_reports)
                .where(*where)
                .order_by(_M.created_at.desc(), _M.id.desc())
                .limit(limit)
            ).all()
        return [MonitoringReportRecord(**r._mapping) for r in rows]

    # ------------------------------------------------------------------ tokens

    def create_token(self, name: str, role: str, token_hash: str) -> TokenRecord:
        """Store an API token (only its hash) and log ``token_created``.

        Raises:
            Conflict: a token with this hash exists already.
        """
        with self._db.write() as conn:
            stmt = (
                self._db.insert(t.tokens)
                .values(name=name, role=role, token_hash=token_hash, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["token_hash"])
            )
            token_id = conn.execute(stmt.returning(_T.id)).scalar_one_or_none()
            if token_id is None:
                raise Conflict("a token with this hash exists already; generate a new token")
            self._add_event(
                conn, "token_created", subject=name, numbers={"token_id": token_id, "role": role}
            )
            row = conn.execute(sa.select(t.tokens).where(_T.id == token_id)).one()
        return TokenRecord(**row._mapping)

    def find_token(self, token_hash: str) -> TokenRecord | None:
        """The active (not revoked) token with this hash, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(t.tokens).where(_T.token_hash == token_hash, _T.revoked_at.is_(None))
            ).first()
        return None if row is None else TokenRecord(**row._mapping)

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.tokens).order_by(_T.id)).all()
        return [TokenRecord(**r._mapping) for r in rows]

    def revoke_token(self, token_id: int, actor: str = "system") -> None:
        """Revoke a token (idempotent) and log ``token_revoked``.

        Raises:
            NotFound: no token with this id.
        """
        with self._db.write() as conn:
            row = conn.execute(sa.select(_T.name, _T.revoked_at).where(_T.id == token_id)).first()
            if row is None:
                raise NotFound(
                    f"no token with id {token_id}; list tokens with `modelpilot token list`"
                )
            if row.revoked_at is not None:
                return
            conn.execute(t.tokens.update().where(_T.id == token_id).values(revoked_at=utcnow()))
            self._add_event(
                conn, "token_revoked", subject=row.name, actor=actor, numbers={"token_id": token_id}
            )
