"""Suite-wide marking: tests that train models or replay histories are ``slow``.

A test is slow when it uses a fixture that trains a real champion and runs the loop on it
(``trained_project``, ``make_pilot``, the dashboard's ``demo_env``), replays a history
through the backtest's worker pool, or runs ``modelpilot demo``. ``pytest -m "not slow"`` is then the quick inner loop
(docs/testing.md); ``make test`` runs everything.
"""

from __future__ import annotations

import pytest

SLOW_FIXTURES = frozenset({"trained_project", "make_pilot", "demo_env"})
SLOW_MODULES = frozenset({"test_demo.py"})  # runs `modelpilot demo`: the whole loop in a subprocess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        replays = "backtest" in item.path.parts and "executor" in names
        if names & SLOW_FIXTURES or replays or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
