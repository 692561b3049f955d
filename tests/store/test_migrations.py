"""Alembic migrations: run on open, once under concurrency, matching the tables."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modelpilot.errors import StoreError
from modelpilot.store import Store
from modelpilot.store.migrate import alembic_config, head_revision
from modelpilot.store.schema import metadata
from modelpilot.testing.store_suite import race


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def test_open_creates_version_table_at_head(store_url: str) -> None:
    Store.open(store_url).close()
    engine = _engine(store_url)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head_revision()
        assert set(sa.inspect(conn).get_table_names()) == set(metadata.tables) | {"alembic_version"}
    engine.dispose()


def test_migrations_produce_exactly_the_declared_schema(store: Store, store_url: str) -> None:
    engine = _engine(store_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(store_url: str) -> None:
    Store.open(store_url).close()
    engine = _engine(store_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
        assert sa.inspect(conn).get_table_names() == ["alembic_version"]
    engine.dispose()
    with Store.open(store_url) as store:
        assert store.create_run("m").id == 1


def test_concurrent_first_open_migrates_once(store_url: str) -> None:
    results = race(4, lambda i: Store.open(store_url))
    assert all(isinstance(r, Store) for r in results), results
    for opened in results:
        opened.close()  # type: ignore[union-attr]
    engine = _engine(store_url)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1
    engine.dispose()


def test_schema_from_newer_modelpilot_is_refused(store_url: str) -> None:
    Store.open(store_url).close()
    engine = _engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    with pytest.raises(
        StoreError,
        match=r"revision '0099_future'.*newer modelpilot.*"
        r"pip install -U modelpilot",
    ):
        Store.open(store_url)
