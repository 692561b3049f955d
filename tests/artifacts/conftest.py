"""Fixtures for the artifact store tests: a real moto S3 server, one bucket per test."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from modelpilot.testing.s3 import S3Server, moto_s3
from modelpilot.testing.services import unavailable


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server for the whole session (skipped when moto is not installed)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        unavailable("moto is not installed: pip install 'modelpilot[test]' to run S3 tests")
    with moto_s3(bucket="modelpilot-session") as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Server:
    """A fresh, empty bucket on the session's server."""
    return s3_server.with_bucket(f"mp-{uuid4().hex[:16]}")
