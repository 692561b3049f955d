"""The metadata store: one class over SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from types import TracebackType

from modelpilot.store._audit import AuditMixin
from modelpilot.store._buffer import (
    MetricBuffer,
    register_for_exit_flush,
    unregister_exit_flush,
    wake_flusher,
)
from modelpilot.store._deliveries import DeliveriesMixin
from modelpilot.store._edge import EdgeMixin
from modelpilot.store._runs import RunsMixin
from modelpilot.store._session import Database
from modelpilot.store._state import StateMixin
from modelpilot.store._versions import VersionsMixin
from modelpilot.store.migrate import upgrade

METRIC_BUFFER_POINTS = 10_000


class Store(RunsMixin, VersionsMixin, AuditMixin, StateMixin, DeliveriesMixin, EdgeMixin):
    """Runs, metrics, datasets, model versions, aliases, approvals, events, state, the
    webhook outbox, and edge devices with their reports.

    Contract:
      * Thread-safe: one engine (connection pool) per store, one short transaction per
        call; share one ``Store`` between threads. Several processes may open the same
        database (SQLite in WAL mode, or PostgreSQL).
      * Records returned are frozen dataclasses; times are timezone-aware UTC; a naive
        datetime passed in is taken as UTC.
      * Every method raises :class:`~modelpilot.errors.StoreError` when the database
        fails, a :class:`~modelpilot.errors.NotFound` subclass for a missing run, model,
        version or alias, and :class:`~modelpilot.errors.Conflict` when a
        compare-and-set finds something else than expected.
      * ``log_metric`` is buffered: written by a background thread about half a second
        after it was logged (so SIGKILL loses at most about the last second of points), at
        10,000 points, on ``flush()``, ``finish_run()``, ``close()`` and at interpreter
        exit; every other write is committed when the call returns.

    Example::

        >>> store = Store.open("sqlite://")
        >>> run = store.create_run("churn", params={"lr": 0.1})
        >>> store.log_metric(run.id, "loss", 0.5, step=1)
        >>> store.latest_metrics(run.id)
        {'loss': 0.5}
        >>> store.close()
    """

    def __init__(self, db: Database, *, buffer_points: int = METRIC_BUFFER_POINTS) -> None:
        """Wrap an already migrated database; use :meth:`Store.open`."""
        self._db = db
        self._metrics = MetricBuffer(buffer_points, on_first=wake_flusher)
        self._flush_lock = threading.Lock()
        self._known_runs: set[int] = set()
        register_for_exit_flush(self)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to the store at ``url``, creating or migrating its schema to head.

        Args:
            url: a SQLAlchemy URL: ``sqlite:///path/to/store.db`` (the folder is created),
                ``sqlite://`` (in memory, one process) or
                ``postgresql+psycopg://user@host/db`` (add
                ``?options=-csearch_path%3Dmyschema`` to use a schema).

        Returns:
            An open store.

        Raises:
            ConfigError: the URL is not a supported SQLAlchemy URL.
            StoreError: the database cannot be reached, or was migrated by a newer
                modelpilot.
        """
        db = Database(url)
        try:
            upgrade(db)
        except BaseException:
            db.dispose()
            raise
        return cls(db)

    @property
    def url(self) -> str:
        """The store's URL, password hidden."""
        return self._db.display_url

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.dialect

    @property
    def closed(self) -> bool:
        return self._db.closed

    def close(self) -> None:
        """Flush buffered metrics and release the connections; idempotent."""
        if self._db.closed:
            return
        try:
            self.flush()
        finally:
            unregister_exit_flush(self)
            self._db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"
