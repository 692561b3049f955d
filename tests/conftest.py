"""Suite-wide marking: tests that train models or replay histories are ``slow``.

A test is slow when it uses a fixture that trains a real champion and runs the loop on it
(``trained_project``, ``make_pilot``, the dashboard's ``demo_env``), needs the two-node Ray
cluster (``ray_address``, started once per session and only when a test asks), replays a history
through the backtest's worker pool, or runs ``modelpilot demo``. ``pytest -m "not slow"`` is then the quick inner loop
(docs/testing.md); ``make test`` runs everything.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelpilot.testing.services import unavailable

SLOW_FIXTURES = frozenset({"trained_project", "make_pilot", "demo_env", "ray_address"})
SLOW_MODULES = frozenset({"test_demo.py"})  # runs `modelpilot demo`: the whole loop in a subprocess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        replays = "backtest" in item.path.parts and "executor" in names
        if names & SLOW_FIXTURES or replays or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """A local Ray cluster of two one-CPU nodes, each with its own temporary folder; this
    process is connected to it as a driver. Stopped by pid at the end of the session."""
    try:
        import ray
    except ImportError:
        unavailable("Ray is not installed: pip install 'modelpilot[ray]' to run the Ray tests")
    from modelpilot.testing.raycluster import ray_cluster, wait_for_nodes

    with ray_cluster(nodes=2) as cluster:
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        try:
            assert len(wait_for_nodes(2)) == 2, "the second Ray node never joined"
            yield cluster.address
        finally:
            ray.shutdown()
