"""Fixtures giving every store test a fresh database on each backend.

``store_url`` is parametrized over SQLite (a file in ``tmp_path``) and PostgreSQL (the
server at ``MODELPILOT_TEST_POSTGRES_URL``; skipped with the reason when unreachable). Each
PostgreSQL test gets its own schema, selected through the URL's ``search_path`` option, so
tables and the Alembic version table of one test never meet another's; the schema is
dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa

from modelpilot.store import Store
from modelpilot.testing.services import unavailable

POSTGRES_ENV = "MODELPILOT_TEST_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _libpq(url: str) -> str:
    """The plain libpq form of a SQLAlchemy PostgreSQL URL (for psycopg.connect)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            pass
    except psycopg.Error as exc:
        shown = sa.make_url(url).render_as_string(hide_password=True)
        unavailable(
            f"PostgreSQL not reachable at {shown} ({exc}); set {POSTGRES_ENV} to a "
            "reachable server to run the PostgreSQL store tests"
        )
    return url


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema (dropped afterwards)."""
    schema = f"mp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as opened:
        yield opened
