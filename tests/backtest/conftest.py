from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from modelpilot.executors import LocalExecutor


@pytest.fixture(scope="session")
def executor() -> Iterator[LocalExecutor | None]:
    """One pool for every backtest: policies replay in parallel worker processes.

    ``MODELPILOT_TEST_BACKTEST_INPROCESS=1`` replays them one after another in the test's
    process instead (``executor=None``), so that code a worker would run is traced and
    mutated by mutation testing (``tools/mutation.py`` sets it for the backtest group).
    """
    if os.environ.get("MODELPILOT_TEST_BACKTEST_INPROCESS") == "1":
        yield None
        return
    with LocalExecutor(workers=2) as ex:
        yield ex
