"""Datasets, models, runs and metrics."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelpilot.errors import NotFound, RequestError, StoreError
from modelpilot.store import schema as t
from modelpilot.store._base import StoreBase, check_choice, utcnow
from modelpilot.store._buffer import MetricBuffer
from modelpilot.store.records import RUN_STATUSES, DatasetRecord, MetricPoint, RunRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _to_us(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class RunsMixin(StoreBase):
    _metrics: MetricBuffer
    _flush_lock: threading.Lock
    #: seconds a logged point may wait before the background flusher writes it (None: the default)
    metric_max_age: float | None = None
    _known_runs: set[int]

    # ------------------------------------------------------------------ datasets

    def add_dataset(
        self,
        hash: str,
        source: str,
        rows: int,
        schema: Mapping[str, str],
        time_min: datetime | None = None,
        time_max: datetime | None = None,
    ) -> DatasetRecord:
        """Record a dataset snapshot; idempotent on ``hash``.

        Returns:
            The stored record; for a hash already recorded, the existing record unchanged.
        """
        stmt = self._db.insert(t.datasets).values(
            hash=hash,
            source=source,
            rows=int(rows),
            schema=dict(schema),
            time_min=time_min,
            time_max=time_max,
            created_at=utcnow(),
        )
        with self._db.write() as conn:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["hash"]))
            row = conn.execute(sa.select(t.datasets).where(t.datasets.c.hash == hash)).one()
        return DatasetRecord(**row._mapping)

    def get_dataset(self, hash: str) -> DatasetRecord:
        """The dataset snapshot with this hash.

        Raises:
            NotFound: no snapshot with that hash was recorded.
        """
        with self._db.read() as conn:
            row = conn.execute(sa.select(t.datasets).where(t.datasets.c.hash == hash)).first()
        if row is None:
            raise NotFound(f"no dataset snapshot with hash {hash!r}; record it with add_dataset")
        return DatasetRecord(**row._mapping)

    # ------------------------------------------------------------------ models

    def create_model(self, name: str, description: str | None = None) -> None:
        """Create a model by name; a no-op when it exists."""
        with self._db.write() as conn:
            self._ensure_model(conn, name, description)

    def list_models(self) -> list[str]:
        """Every model name, sorted."""
        with self._db.read() as conn:
            return list(conn.scalars(sa.select(t.models.c.name).order_by(t.models.c.name)))

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        model: str,
        kind: str = "train",
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        dataset_hashes: Iterable[str] | None = None,
    ) -> RunRecord:
        """Start a run (status ``running``) of ``model``, creating the model if absent."""
        hashes = list(dataset_hashes or [])
        with self._db.write() as conn:
            self._ensure_model(conn, model)
            run_id = conn.execute(
                t.runs.insert()
                .values(
                    model=model,
                    kind=kind,
                    status="running",
                    params=dict(params or {}),
                    tags=dict(tags or {}),
                    profile={},
                    created_at=utcnow(),
                )
                .returning(t.runs.c.id)
            ).scalar_one()
            if hashes:
                conn.execute(
                    t.run_datasets.insert(),
                    [
                        {"run_id": run_id, "position": i, "dataset_hash": h}
                        for i, h in enumerate(hashes)
                    ],
                )
            record = self._runs(conn, t.runs.c.id == run_id)[0]
        self._known_runs.add(run_id)
        return record

    def log_params(self, run_id: int, params: Mapping[str, Any]) -> None:
        """Merge ``params`` into the run's parameters (new values win)."""
        self._merge_json(run_id, "params", params)

    def set_tags(self, run_id: int, tags: Mapping[str, Any]) -> None:
        """Merge ``tags`` into the run's tags (new values win)."""
        self._merge_json(run_id, "tags", tags)

    def _merge_json(self, run_id: int, column: str, values: Mapping[str, Any]) -> None:
        col = t.runs.c[column]
        with self._db.write() as conn:
            current = conn.execute(sa.select(col).where(t.runs.c.id == run_id)).first()
            if current is None:
                raise _no_run(run_id)
            merged = {**current[0], **values}
            conn.execute(t.runs.update().where(t.runs.c.id == run_id).values({col: merged}))

    def heartbeat(self, run_id: int) -> None:
        """Mark the run alive now (the controller fails runs whose heartbeat stops)."""
        self._update_run(run_id, heartbeat_at=utcnow())

    def finish_run(
        self,
        run_id: int,
        status: str = "finished",
        profile: Mapping[str, Any] | None = None,
        cost: float | None = None,
        error: str | None = None,
    ) -> RunRecord:
        """End a run: flush its buffered metrics, then record status, profile, cost, error.

        Raises:
            RequestError: ``status`` is not ``finished`` or ``failed``.
            NotFound: no such run.
        """
        check_choice("a finished run's status", status, RUN_STATUSES[1:])
        self.flush()
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
        if profile is not None:
            values["profile"] = dict(profile)
        if cost is not None:
            values["cost"] = float(cost)
        self._update_run(run_id, **values)
        return self.get_run(run_id)

    def _update_run(self, run_id: int, **values: Any) -> None:
        with self._db.write() as conn:
            done = conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))
            if done.rowcount == 0:
                raise _no_run(run_id)

    def get_run(self, run_id: int) -> RunRecord:
        """The run with this id.

        Raises:
            NotFound: no such run.
        """
        with self._db.read() as conn:
            found = self._runs(conn, t.runs.c.id == run_id)
        if not found:
            raise _no_run(run_id)
        return found[0]

    def list_runs(
        self,
        model: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """Runs matching every filter given, newest first."""
        where = sa.and_(
            sa.true(),
            *[
                t.runs.c[name] == value
                for name, value in (("model", model), ("status", status), ("kind", kind))
                if value is not None
            ],
        )
        with self._db.read() as conn:
            return self._runs(conn, where, limit=limit)

    def _runs(self, conn: Connection, where: Any, *, limit: int | None = None) -> list[RunRecord]:
        rows = conn.execute(
            sa.select(t.runs).where(where).order_by(t.runs.c.id.desc()).limit(limit)
        ).all()
        ids = [r.id for r in rows]
        hashes: dict[int, list[str]] = {i: [] for i in ids}
        if ids:
            links = conn.execute(
                sa.select(t.run_datasets.c.run_id, t.run_datasets.c.dataset_hash)
                .where(t.run_datasets.c.run_id.in_(ids))
                .order_by(t.run_datasets.c.run_id, t.run_datasets.c.position)
            )
            for rid, h in links:
                hashes[rid].append(h)
        return [RunRecord(**r._mapping, dataset_hashes=hashes[r.id]) for r in rows]

    # ------------------------------------------------------------------ metrics

    def log_metric(
        self,
        run_id: int,
        key: str,
        value: float,
        step: int = 0,
        timestamp: datetime | None = None,
    ) -> None:
        """Buffer one metric point; written in a batch (see :meth:`flush`).

        Raises:
            NotFound: no such run (checked once per run id).
            RequestError: ``value`` is not a number.
        """
        if run_id not in self._known_runs:
            self.get_run(run_id)
            self._known_runs.add(run_id)
        row = (
            run_id,
            key,
            _number(key, value),
            int(step),
            time.time_ns() // 1000 if timestamp is None else _to_us(timestamp),
        )
        if self._metrics.add(row):
            self.flush()

    def log_metrics(
        self,
        run_id: int,
        points: Iterable[tuple[str, float, int]] | Mapping[str, float],
        step: int = 0,
    ) -> int:
        """Write many metric points at once: one transaction, one executemany.

        Args:
            run_id: the run.
            points: ``(key, value, step)`` tuples, or a ``{key: value}`` mapping at ``step``.
            step: the step of a mapping's values.

        Returns:
            How many points were written.

        Raises:
            NotFound: no such run.
        """
        now = time.time_ns() // 1000
        triples: Iterable[tuple[str, float, int]] = (
            [(k, v, step) for k, v in points.items()] if isinstance(points, Mapping) else points
        )
        try:
            rows = [(run_id, k, float(v), int(s), now) for k, v, s in triples]
        except (TypeError, ValueError) as exc:
            raise RequestError(
                f"metric points must be (key, value, step) with a numeric value: {exc}"
            ) from exc
        if run_id not in self._known_runs:
            self.get_run(run_id)
            self._known_runs.add(run_id)
        if rows:
            with self._db.write() as conn:
                _insert_metrics(conn, rows)
        return len(rows)

    def flush(self) -> None:
        """Write every buffered metric point now (one transaction).

        Raises:
            StoreError: the write failed; the points stay buffered for the next flush.
        """
        with self._flush_lock:
            rows = self._metrics.take()
            if not rows:
                return
            try:
                with self._db.write() as conn:
                    _insert_metrics(conn, rows)
            except BaseException:
                self._metrics.put_back(rows)
                raise

    def flush_due(self, max_age: float) -> bool:
        """Flush when the oldest buffered point is ``max_age`` seconds old (the flusher calls it).

        Returns:
            Whether points are still buffered afterwards (younger ones, or a closed store's).
        """
        if self._db.closed:
            return False
        if self._metrics.age() >= (self.metric_max_age if self.metric_max_age is not None else max_age):
            self.flush()
        return len(self._metrics) > 0

    def metric_history(self, run_id: int, key: str) -> list[MetricPoint]:
        """Every point of one metric of a run, by step (buffered points included)."""
        self.flush()
        m = t.metrics.c
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(m.key, m.value, m.step, m.timestamp_us)
                .where(m.run_id == run_id, m.key == key)
                .order_by(m.step, m.id)
            ).all()
        return [MetricPoint(k, _value(v), s, _from_us(ts)) for k, v, s, ts in rows]

    def latest_metrics(self, run_id: int) -> dict[str, float]:
        """Each metric's value at its last step (the last one logged on a tie)."""
        self.flush()
        m = t.metrics.c
        rank = sa.func.row_number().over(partition_by=m.key, order_by=(m.step.desc(), m.id.desc()))
        ranked = sa.select(m.key, m.value, rank.label("rank")).where(m.run_id == run_id).subquery()
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(ranked.c.key, ranked.c.value).where(ranked.c.rank == 1)
            ).all()
        return {k: _value(v) for k, v in sorted(rows)}


MetricRow = tuple[int, str, float, int, int]  # run_id, key, value, step, timestamp_us
_METRIC_COLUMNS = ("run_id", "key", "value", "step", "timestamp_us")
_metric_sql: dict[str, tuple[str, tuple[str, ...] | None]] = {}


def _insert_metrics(conn: Connection, rows: list[MetricRow]) -> None:
    """INSERT many metric rows in the caller's transaction, with one executemany.

    The statement is SQLAlchemy Core's ``insert()``, compiled once per dialect; the rows
    go to the driver's ``executemany`` as they are (tuples for positional paramstyles,
    dicts for named ones). That skips SQLAlchemy's per-row parameter processing, which
    costs more than SQLite's insert itself; it is sound because every metric column is an
    integer, float or string, types that need no bind processing on any dialect.
    """
    dialect = conn.dialect
    if dialect.name not in _metric_sql:
        compiled = t.metrics.insert().compile(dialect=dialect, column_keys=list(_METRIC_COLUMNS))
        order = (
            tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        )
        if order is not None and order != _METRIC_COLUMNS:
            raise StoreError(
                f"unexpected metric INSERT parameter order {order}"
            )  # pragma: no cover
        _metric_sql[dialect.name] = (str(compiled), None if order else _METRIC_COLUMNS)
    sql, names = _metric_sql[dialect.name]
    if names is None:
        conn.exec_driver_sql(sql, rows)
    else:
        conn.exec_driver_sql(sql, [dict(zip(names, row, strict=True)) for row in rows])


def _number(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise RequestError(f"metric {key!r} must be a number, got {value!r}") from exc


def _value(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _no_run(run_id: int) -> NotFound:
    return NotFound(f"no run with id {run_id}; list runs with Store.list_runs()")
