"""The test PostgreSQL server: its URL (or a skip), and a fresh schema per test.

Example::

    url = postgres_url()                 # skips (or fails under MODELPILOT_REQUIRE_SERVICES)
    with fresh_schema(url) as schema_url:
        store = Store.open(schema_url)

Each schema is selected through the URL's ``search_path`` option, so the tables and the
Alembic version table of one test never meet another's. A schema is dropped on exit
together with its ``<schema>_optuna`` sibling (where tuning keeps its studies).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import sqlalchemy as sa

from modelpilot.testing.services import unavailable

POSTGRES_ENV = "MODELPILOT_TEST_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def libpq(url: str) -> str:
    """The plain libpq form of a SQLAlchemy PostgreSQL URL (for psycopg.connect)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_url() -> str:
    """The server at ``MODELPILOT_TEST_POSTGRES_URL`` (default: local, db ``test``), or a skip."""
    url = os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)
    try:
        with psycopg.connect(libpq(url), connect_timeout=3):
            pass
    except psycopg.Error as exc:
        shown = sa.make_url(url).render_as_string(hide_password=True)
        unavailable(
            f"PostgreSQL not reachable at {shown} ({exc}); set {POSTGRES_ENV} to a "
            "reachable server to run the PostgreSQL tests"
        )
    return url


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema (dropped on exit)."""
    schema = f"mp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_optuna" CASCADE')
