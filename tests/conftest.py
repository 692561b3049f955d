"""Suite-wide marking: tests that train models or replay histories are ``slow``.

A test is slow when it uses a fixture that trains a real champion and runs the loop on it
(``trained_project``, ``make_pilot``, the dashboard's ``demo_env``), needs the two-node Ray
cluster (``ray_address``, started once per session and only when a test asks), replays a history
through the backtest's worker pool, or runs ``modelpilot demo``. ``pytest -m "not slow"`` is then the quick inner loop
(docs/testing.md); ``make test`` runs everything.

Under ``make test`` (pytest-xdist, ``--dist loadgroup``) each test also gets its worker group
from the fixtures it uses (:func:`xdist_group`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelpilot.testing.services import unavailable

SLOW_FIXTURES = frozenset({"trained_project", "make_pilot", "demo_env", "ray_address"})
SLOW_MODULES = frozenset({"test_demo.py"})  # runs `modelpilot demo`: the whole loop in a subprocess

# session fixtures too costly to build once per xdist worker: their tests share one worker
SHARED_SESSION = {"demo_env": "ui", "browser": "ui", "ray_address": "ray"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    shared_modules = set()
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        replays = "backtest" in item.path.parts and "executor" in names
        if names & SLOW_FIXTURES or replays or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if _uses_module_fixture(item):
            shared_modules.add(item.path)
    for item in items:
        group = xdist_group(item, shared_modules)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def xdist_group(item: pytest.Item, shared_modules: set[Path]) -> str | None:
    """The worker group of a test under ``pytest -n N --dist loadgroup`` (``make test``).

    The users of an expensive session fixture share one worker (the dashboard's demo project
    and browser; the two-node Ray cluster: two clusters at once would not fit beside the
    tests). So does every test of a module where any test uses a module-scoped fixture: the
    fixture is built once, and module-level state the tests build up stays in one process.
    Every other test goes to whichever worker is free.
    """
    names = set(getattr(item, "fixturenames", ()))
    for name, group in SHARED_SESSION.items():
        if name in names:
            return group
    if item.path in shared_modules:
        return item.path.relative_to(item.config.rootpath).as_posix()
    return None


def _uses_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    return any(d[-1].scope == "module" for d in defs if d)


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
            _RAY_CLIENT.append(cluster.client_address)
            yield cluster.address
        finally:
            _RAY_CLIENT.clear()
            ray.shutdown()


_RAY_CLIENT: list[str] = []


@pytest.fixture
def ray_client_address(ray_address: str) -> str:
    """The same cluster's Ray Client server (``ray://127.0.0.1:port``), for another driver."""
    return _RAY_CLIENT[-1]
