from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelpilot.executors import LocalExecutor


@pytest.fixture(scope="session")
def executor() -> Iterator[LocalExecutor]:
    """One pool for every backtest: policies replay in parallel worker processes."""
    with LocalExecutor(workers=2) as ex:
        yield ex
