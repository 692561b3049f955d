"""Model versions (numbered 1, 2, 3… per model) and aliases (champion, challenger…).

Concurrency: every write that reads a model's versions or aliases and then changes them
first locks the model (``_lock_model``: a row lock on PostgreSQL, the database write lock
on SQLite), so allocating the next version number and compare-and-set on an alias are
serialised per model. The ``(model, version)`` unique constraint is a second guard: a
duplicate that slipped through would fail the insert, which is retried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelpilot.errors import Conflict, ModelNotFound, StoreError
from modelpilot.store import schema as t
from modelpilot.store._base import StoreBase, check_choice, event_record, storable_version, utcnow
from modelpilot.store.records import (
    ANY,
    VERSION_STATUSES,
    EventRecord,
    ModelVersionRecord,
    _Any,
)

_V = t.model_versions.c
_A = t.aliases.c
_RETRIES = 5


def version_record(row: sa.Row[Any]) -> ModelVersionRecord:
    values = dict(row._mapping)
    values.pop("id")
    return ModelVersionRecord(**values)


class VersionsMixin(StoreBase):
    # ------------------------------------------------------------------ versions

    def register_version(
        self,
        model: str,
        *,
        run_id: int | None,
        artifact_key: str,
        reference_key: str | None,
        signature: Sequence[Mapping[str, Any]],
        task: str,
        classes: Sequence[Any] | None,
        metrics: Mapping[str, float],
        lineage: Mapping[str, Any],
        cost: float | None = None,
        status: str = "registered",
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> ModelVersionRecord:
        """Register the next version of ``model`` (created if absent), and log an event.

        With an ``idempotency_key`` already used for this model, the version registered
        then is returned and nothing is written (a retried job does not register twice).

        Raises:
            RequestError: ``status`` is not a version status.
        """
        check_choice("a version's status", status, VERSION_STATUSES)
        values: dict[str, Any] = {
            "model": model,
            "run_id": run_id,
            "status": status,
            "artifact_key": artifact_key,
            "reference_key": reference_key,
            "signature": [dict(s) for s in signature],
            "task": task,
            "classes": None if classes is None else list(classes),
            "metrics": {k: float(v) for k, v in metrics.items()},
            "lineage": dict(lineage),
            "cost": cost,
            "description": description,
            "idempotency_key": idempotency_key,
        }
        for attempt in range(_RETRIES):
            try:
                with self._db.write() as conn:
                    return self._register(conn, values)
            except StoreError as exc:
                if not isinstance(exc.__cause__, sa.exc.IntegrityError) or attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _register(self, conn: Connection, values: dict[str, Any]) -> ModelVersionRecord:
        model, key = values["model"], values["idempotency_key"]
        self._ensure_model(conn, model)
        self._lock_model(conn, model)
        if key is not None:
            existing = conn.execute(
                sa.select(t.model_versions).where(_V.model == model, _V.idempotency_key == key)
            ).first()
            if existing is not None:
                return version_record(existing)
        number = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(_V.version), 0) + 1).where(_V.model == model)
        ).scalar_one()
        conn.execute(
            t.model_versions.insert().values(**values, version=number, created_at=utcnow())
        )
        self._add_event(
            conn,
            "version_registered",
            model=model,
            subject=f"v{number}",
            numbers={"version": number, "run_id": values["run_id"], "status": values["status"]},
        )
        return self._version(conn, model, number)

    def _version(self, conn: Connection, model: str, version: int) -> ModelVersionRecord:
        row = None
        if storable_version(version):  # a larger number is no version (and overflows the column)
            row = conn.execute(
                sa.select(t.model_versions).where(_V.model == model, _V.version == version)
            ).first()
        if row is None:
            raise ModelNotFound(
                f"model {model!r} has no version {version}; list its versions with "
                "`modelpilot status` (or Store.list_versions)"
            )
        return version_record(row)

    def get_version(self, model: str, version: int) -> ModelVersionRecord:
        """One version of a model.

        Raises:
            ModelNotFound: no such model or version.
        """
        with self._db.read() as conn:
            return self._version(conn, model, version)

    def list_versions(self, model: str) -> list[ModelVersionRecord]:
        """Every version of ``model``, oldest first (empty for an unknown model)."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.model_versions).where(_V.model == model).order_by(_V.version)
            ).all()
        return [version_record(r) for r in rows]

    def latest_version(self, model: str) -> ModelVersionRecord | None:
        """The highest-numbered version of ``model``, whatever its status."""
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(t.model_versions)
                .where(_V.model == model)
                .order_by(_V.version.desc())
                .limit(1)
            ).first()
        return None if row is None else version_record(row)

    def find_version_by_key(self, model: str, idempotency_key: str) -> ModelVersionRecord | None:
        """The version registered with this idempotency key, if any."""
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(t.model_versions).where(
                    _V.model == model, _V.idempotency_key == idempotency_key
                )
            ).first()
        return None if row is None else version_record(row)

    def set_version_status(
        self, model: str, version: int, status: str, actor: str = "system", reason: str = ""
    ) -> ModelVersionRecord:
        """Change a version's status and log a ``version_status`` event, atomically.

        Raises:
            RequestError: ``status`` is not a version status.
            ModelNotFound: no such model or version.
        """
        check_choice("a version's status", status, VERSION_STATUSES)
        with self._db.write() as conn:
            self._lock_model(conn, model)
            before = self._version(conn, model, version).status
            conn.execute(
                t.model_versions.update()
                .where(_V.model == model, _V.version == version)
                .values(status=status)
            )
            self._add_event(
                conn,
                "version_status",
                model=model,
                subject=f"v{version}",
                actor=actor,
                reason=reason,
                numbers={"version": version, "from": before, "to": status},
            )
            return self._version(conn, model, version)

    # ------------------------------------------------------------------ aliases

    def set_alias(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        actor: str = "system",
        reason: str = "",
        numbers: Mapping[str, Any] | None = None,
        expected_current: int | None | _Any = ANY,
    ) -> None:
        """Point ``alias`` at ``version`` and log an ``alias_moved`` event, atomically.

        Args:
            expected_current: compare-and-set: the version the alias must point at now
                (``None``: the alias must not exist yet); the default ``ANY`` skips the check.
            numbers: extra figures for the event; ``from`` and ``to`` are added.

        Raises:
            ModelNotFound: no such model or version.
            Conflict: the alias does not point at ``expected_current``.
        """
        with self._db.write() as conn:
            self._lock_model(conn, model)
            self._version(conn, model, version)
            current = self._alias(conn, model, alias)
            if expected_current is not ANY and current != expected_current:
                raise Conflict(
                    f"alias {alias!r} of model {model!r} points at {_v(current)}, not "
                    f"{_v(expected_current)} as expected: it was moved meanwhile; re-read "
                    "the alias and decide again"
                )
            values = {"version": version, "updated_at": utcnow()}
            if current is None:
                conn.execute(t.aliases.insert().values(model=model, alias=alias, **values))
            else:
                conn.execute(
                    t.aliases.update().where(_A.model == model, _A.alias == alias).values(values)
                )
            self._add_event(
                conn,
                "alias_moved",
                model=model,
                subject=alias,
                actor=actor,
                reason=reason,
                numbers={**(numbers or {}), "from": current, "to": version},
            )

    def _alias(self, conn: Connection, model: str, alias: str) -> int | None:
        found: int | None = conn.execute(
            sa.select(_A.version).where(_A.model == model, _A.alias == alias)
        ).scalar_one_or_none()
        return found

    def get_alias(self, model: str, alias: str) -> int | None:
        """The version ``alias`` points at, or None."""
        with self._db.read() as conn:
            return self._alias(conn, model, alias)

    def aliases(self, model: str) -> dict[str, int]:
        """Every alias of ``model`` and its version."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(_A.alias, _A.version).where(_A.model == model).order_by(_A.alias)
            ).all()
        return {a: v for a, v in rows}

    def delete_alias(self, model: str, alias: str, actor: str = "system", reason: str = "") -> None:
        """Remove an alias and log an ``alias_deleted`` event, atomically.

        Raises:
            ModelNotFound: the model has no such alias.
        """
        with self._db.write() as conn:
            self._lock_model(conn, model)
            current = self._alias(conn, model, alias)
            if current is None:
                raise ModelNotFound(f"model {model!r} has no alias {alias!r}; nothing to delete")
            conn.execute(t.aliases.delete().where(_A.model == model, _A.alias == alias))
            self._add_event(
                conn,
                "alias_deleted",
                model=model,
                subject=alias,
                actor=actor,
                reason=reason,
                numbers={"from": current, "to": None},
            )

    def alias_history(self, model: str, alias: str) -> list[EventRecord]:
        """The ``alias_moved`` events of one alias, newest first."""
        e = t.events.c
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.events)
                .where(e.model == model, e.kind == "alias_moved", e.subject == alias)
                .order_by(e.time.desc(), e.id.desc())
            ).all()
        return [event_record(r) for r in rows]


def _v(version: object) -> str:
    return "nothing" if version is None else f"v{version}"
