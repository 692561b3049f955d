"""Alembic migrations, run in code when a store is opened (no ``alembic.ini``).

``upgrade(db)`` brings a database to the newest schema this modelpilot knows. It holds
the database's write lock while it does so (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a
transaction-scoped advisory lock, and PostgreSQL DDL is transactional), so several
processes opening the same fresh store at once migrate it exactly once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

from modelpilot.errors import StoreError
from modelpilot.store._session import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# arbitrary constant identifying "modelpilot schema migration" among advisory locks
_PG_MIGRATION_LOCK = 0x6D70_6D69


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config for the store migrations, built in code.

    Args:
        url: the database URL (for ``alembic`` commands run by hand, e.g. a new revision).
        connection: an open connection to migrate in place (what ``Store.open`` uses).

    Returns:
        A :class:`alembic.config.Config` usable with :mod:`alembic.command`.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision this modelpilot knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise StoreError("modelpilot ships no store migrations; reinstall modelpilot")
    return head


def current_revision(conn: Connection) -> str | None:
    """The schema revision recorded in the database (None for an empty database)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> str:
    """Migrate the database to the head revision, once, under the write lock.

    Args:
        db: the store's database.

    Returns:
        The revision the database is at afterwards.

    Raises:
        StoreError: the database was migrated by a newer modelpilot (unknown revision),
            or the migration failed.
    """
    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    head = head_revision()
    with db.write() as conn:
        if db.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        current = current_revision(conn)
        if current == head:
            return head
        if current is not None:
            _check_known(script, current, head, db.display_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head


def _check_known(script: ScriptDirectory, current: str, head: str | None, url: str) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        known = script.get_revision(current) is not None
    except CommandError:
        known = False
    if known:
        return
    try:
        ours = version("modelpilot")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        ours = "unknown"
    raise StoreError(
        f"the metadata store at {url} has schema revision {current!r}, which this "
        f"modelpilot ({ours}, newest schema {head!r}) does not know: it was created or "
        "migrated by a newer modelpilot. Upgrade modelpilot (pip install -U modelpilot) "
        "to the version that wrote it, or point store.url at another database."
    )
