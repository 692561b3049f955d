"""Opening stores: URLs, SQLite settings, errors that say how to fix them."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from modelpilot.errors import ConfigError, StoreError
from modelpilot.store import Store
from modelpilot.store._session import BUSY_TIMEOUT_MS, parse_url


@pytest.mark.parametrize("url", ["", "not a url", "::", "sqlite//x.db"])
def test_bad_url_says_what_a_url_looks_like(url: str) -> None:
    with pytest.raises(
        ConfigError,
        match=r"store.url must be a SQLAlchemy URL such as "
        r"sqlite:///path.db or postgresql\+psycopg://",
    ):
        Store.open(url)


def test_unsupported_database_is_named() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unsupported store database 'mysql'.*supported: "
        r"postgresql, sqlite",
    ):
        Store.open("mysql://u@localhost/db")


def test_plain_postgresql_url_uses_psycopg() -> None:
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


def test_unreachable_server_is_a_store_error_without_password() -> None:
    url = "postgresql+psycopg://me:secret@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(StoreError, match=r"127.0.0.1:1.*reachable") as info:
        Store.open(url)
    assert "secret" not in str(info.value)


def test_sqlite_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'dir' / 'store.db'}"
    with Store.open(url) as store, store._db.engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": BUSY_TIMEOUT_MS,
        }
        with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
            conn.exec_driver_sql(
                "INSERT INTO metrics (run_id, key, value, step, timestamp_us) "
                "VALUES (42, 'k', 1.0, 0, 0)"
            )
    assert (tmp_path / "sub" / "dir" / "store.db").exists()


def test_in_memory_sqlite_store() -> None:
    with Store.open("sqlite://") as store:
        run = store.create_run("m")
        store.log_metrics(run.id, {"loss": 0.1})
        assert store.latest_metrics(run.id) == {"loss": 0.1}
        assert store.dialect == "sqlite"


def test_close_is_idempotent_and_flushes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store.open(url)
    run = store.create_run("m")
    store.log_metric(run.id, "loss", 1.0)
    store.close()
    store.close()
    assert store.closed
    with Store.open(url) as again:
        assert again.latest_metrics(run.id) == {"loss": 1.0}
