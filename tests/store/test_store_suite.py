"""The shipped conformance suite, run over SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

from modelpilot.testing.store_suite import StoreSuite


class TestStore(StoreSuite):
    pass
