"""Skipping tests whose service is absent — except where it must be present.

A test that needs PostgreSQL, S3 or a browser skips with the reason when the service is
missing on a developer's machine. In CI (``MODELPILOT_REQUIRE_SERVICES=1``, set by
``.ci/run``) the same absence fails the test, so a service test never silently skips.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ENV = "MODELPILOT_REQUIRE_SERVICES"


def unavailable(reason: str) -> NoReturn:
    """Skip (or, when ``MODELPILOT_REQUIRE_SERVICES`` is set, fail) with ``reason``."""
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so this service is required)", pytrace=False)
    pytest.skip(reason)
