"""What every part of the store shares: the database, the clock, models and events.

The repository methods are split by subject into mixins (``_runs``, ``_versions``,
``_audit``, ``_state``); each relies only on what :class:`StoreBase` provides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelpilot.errors import ModelNotFound, RequestError
from modelpilot.store import schema as t
from modelpilot.store._session import Database
from modelpilot.store.records import EventRecord


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    """Refuse a value outside ``allowed``, naming the allowed ones."""
    if value not in allowed:
        raise RequestError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


#: the largest version number any store can hold (PostgreSQL's INTEGER column); a larger
#: one cannot name a version, so lookups answer "not found" instead of a database error
MAX_VERSION = 2**31 - 1


def storable_version(version: int) -> bool:
    """Whether ``version`` fits the version columns (0 .. :data:`MAX_VERSION`)."""
    return 0 <= int(version) <= MAX_VERSION


class StoreBase:
    """The database handle plus helpers used inside one transaction."""

    _db: Database

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A read-only connection for analytical queries over :mod:`modelpilot.store.schema`.

        For readers that aggregate over many rows (the dashboard); the transaction is
        rolled back at the end, so nothing written through it is kept. Database errors
        become :class:`~modelpilot.errors.StoreError` like every other store call.
        """
        with self._db.read(rollback=True) as conn:
            yield conn

    def _ensure_model(self, conn: Connection, name: str, description: str | None = None) -> None:
        """Create the model row if it is absent (idempotent, race-free)."""
        if not name:
            raise RequestError("a model name cannot be empty; give the model's name")
        stmt = self._db.insert(t.models).values(
            name=name, description=description, created_at=utcnow()
        )
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))

    def _lock_model(self, conn: Connection, name: str) -> None:
        """Serialise writers of one model's versions and aliases until commit.

        PostgreSQL locks the model's row; SQLite already holds the database write lock
        (``BEGIN IMMEDIATE``) and ignores ``FOR UPDATE``.
        """
        found = conn.execute(
            sa.select(t.models.c.name).where(t.models.c.name == name).with_for_update()
        ).first()
        if found is None:
            raise ModelNotFound(
                f"no model named {name!r}; register a version first (modelpilot train) "
                "or check the name with `modelpilot status`"
            )

    def _add_event(
        self,
        conn: Connection,
        kind: str,
        *,
        model: str | None = None,
        subject: str | None = None,
        actor: str = "system",
        reason: str = "",
        numbers: Mapping[str, Any] | None = None,
    ) -> EventRecord:
        """Append one event to the audit log within the caller's transaction."""
        values: dict[str, Any] = {
            "time": utcnow(),
            "model": model,
            "kind": kind,
            "subject": subject,
            "actor": actor,
            "reason": reason,
            "numbers": dict(numbers or {}),
        }
        result = conn.execute(t.events.insert().values(**values).returning(t.events.c.id))
        return EventRecord(id=result.scalar_one(), **values)


def event_record(row: sa.Row[Any]) -> EventRecord:
    m = row._mapping
    return EventRecord(
        id=m["id"],
        time=m["time"],
        model=m["model"],
        kind=m["kind"],
        subject=m["subject"],
        actor=m["actor"],
        reason=m["reason"],
        numbers=m["numbers"],
    )
