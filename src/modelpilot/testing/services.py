"""Skipping tests whose service is absent — except where it must be present.

A test that needs PostgreSQL, S3 or a browser skips with the reason when the service is
missing and ``MODELPILOT_REQUIRE_SERVICES`` is unset or ``0``. ``make test`` and ``.ci/run``
set it to ``1``: the same absence then fails the test with the one-line fix, so a service
test never silently skips.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ENV = "MODELPILOT_REQUIRE_SERVICES"


def unavailable(reason: str) -> NoReturn:
    """Skip (or, when ``MODELPILOT_REQUIRE_SERVICES`` is set, fail) with ``reason``."""
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(
            f"{reason}. {REQUIRE_ENV}=1 (set by make test and .ci/run) makes this service required: "
            f"run .ci/run, which starts PostgreSQL and installs Chromium, or skip with "
            f"'make test {REQUIRE_ENV}=0'",
            pytrace=False,
        )
    pytest.skip(reason)
