"""Fixtures giving every store test a fresh database on each backend.

``store_url`` is parametrized over SQLite (a file in ``tmp_path``) and PostgreSQL (the
server at ``MODELPILOT_TEST_POSTGRES_URL``; skipped with the reason when unreachable). Each
PostgreSQL test gets its own schema, selected through the URL's ``search_path`` option, so
tables and the Alembic version table of one test never meet another's; the schema is
dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelpilot.store import Store
from modelpilot.testing import postgres as pg


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return pg.postgres_url()


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema (dropped afterwards)."""
    with pg.fresh_schema(postgres_url) as url:
        yield url


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
