"""One engine per store, one short transaction per call, database errors → StoreError.

Everything that touches the database goes through :meth:`Database.read` or
:meth:`Database.write`: each checks a connection out of the pool, runs one transaction,
commits (or rolls back on any exception) and turns :class:`sqlalchemy.exc.SQLAlchemyError`
into :class:`~modelpilot.errors.StoreError` with a message that says what to check.
Errors the repository code raises on purpose (``NotFound``, ``Conflict``) pass through.

SQLite specifics (the embedded default, shared by threads and processes):
  * WAL journal, so readers never block the writer; ``synchronous=NORMAL`` (safe in WAL);
  * ``foreign_keys=ON`` and a busy timeout, so a writer waits for another instead of
    failing at once;
  * write transactions start with ``BEGIN IMMEDIATE``: they take the write lock first, so
    two writers that read-then-write (allocating a version number, compare-and-set)
    queue up instead of deadlocking on a lock upgrade. Reads use a plain ``BEGIN``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from modelpilot.errors import ConfigError, ModelpilotError, StoreError

BUSY_TIMEOUT_MS = 30_000
_URL_HINT = (
    "store.url must be a SQLAlchemy URL such as sqlite:///path.db or "
    "postgresql+psycopg://user@host/db"
)
_WRITE = "modelpilot_write"

# Dialect-specific INSERT constructs (they add ON CONFLICT), by dialect name.
_INSERTS: dict[str, Callable[[sa.Table], Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def parse_url(url: str) -> sa.URL:
    """Check a store URL and normalise its driver.

    Args:
        url: ``sqlite:///path.db``, ``sqlite://`` (in memory) or ``postgresql+psycopg://...``.

    Returns:
        The parsed URL; a bare ``postgresql://`` gets the psycopg (v3) driver.

    Raises:
        ConfigError: the URL cannot be parsed or names an unsupported database.
    """
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError) as exc:
        raise ConfigError(f"invalid store URL {url!r}: {_URL_HINT}") from exc
    backend = parsed.get_backend_name()
    if backend not in _INSERTS:
        raise ConfigError(
            f"unsupported store database {backend!r} in {parsed.render_as_string()!r}: "
            f"{_URL_HINT} (supported: {', '.join(sorted(_INSERTS))})"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Database:
    """An engine plus the transaction helpers every repository method uses."""

    def __init__(self, url: str) -> None:
        self.url = parse_url(url)
        self.display_url = self.url.render_as_string(hide_password=True)
        self.dialect = self.url.get_backend_name()
        self._serial: AbstractContextManager[Any] = nullcontext()
        self.closed = False
        self.engine = self._create_engine()

    def _create_engine(self) -> Engine:
        if self.dialect != "sqlite":
            return sa.create_engine(self.url, pool_pre_ping=True)
        database = self.url.database or ""
        kwargs: dict[str, Any] = {}
        if database in ("", ":memory:"):
            # one shared connection, so every call sees the same in-memory database;
            # access to it is serialised because it has one transaction state
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
            self._serial = _ReentrantSerial()
        elif not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(self.url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def insert(self, table: sa.Table) -> Any:
        """An INSERT for this dialect, with ``on_conflict_do_nothing/do_update``."""
        return _INSERTS[self.dialect](table)

    @contextmanager
    def read(self, *, rollback: bool = False) -> Iterator[Connection]:
        """A connection in a read transaction; with ``rollback`` nothing done in it is kept."""
        with self._transaction(write=False, rollback=rollback) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed when the block succeeds."""
        with self._transaction(write=True) as conn:
            yield conn

    @contextmanager
    def _transaction(self, *, write: bool, rollback: bool = False) -> Iterator[Connection]:
        if self.closed:
            raise StoreError(
                f"the metadata store at {self.display_url} is closed; open it again with "
                "Store.open(url)"
            )
        try:
            with self._serial, self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: write})
                with conn.begin() as transaction:
                    yield conn
                    if rollback:
                        transaction.rollback()
        except ModelpilotError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise self.error(exc) from exc

    def error(self, exc: BaseException) -> StoreError:
        """The StoreError for a database failure, with what to check."""
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if "locked" in detail or "busy" in detail:
            hint = (
                f"another writer held the database longer than the busy timeout "
                f"({BUSY_TIMEOUT_MS // 1000}s); retry, or use PostgreSQL for many writers"
            )
        elif isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
            hint = "check that the database is reachable and that store.url is right"
        else:
            hint = "check that store.url points at a modelpilot store"
        return StoreError(f"metadata store error at {self.display_url}: {detail}; {hint}")

    def dispose(self) -> None:
        self.closed = True
        self.engine.dispose()


class _ReentrantSerial:
    """A re-entrant lock usable as a context manager many times (nullcontext's shape)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # take transaction control away from the sqlite3 module; _sqlite_on_begin emits BEGIN
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(_WRITE, True)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
