"""The controller's loop keeps ticking whatever a tick raises, and a tick with no champion does nothing.

A real SQLite store and artifact folder, no model: no training happens here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelpilot.artifacts import open_artifacts
from modelpilot.config import PilotConfig
from modelpilot.controller import NAMESPACE, Controller
from modelpilot.errors import DataError
from modelpilot.executors import LocalExecutor
from modelpilot.store import Store


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[dict[str, Any]]:
    cfg = PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}, "store": {"url": "sqlite:///store.db"},
                                 "artifacts": {"url": "artifacts"}}, base_dir=tmp_path)
    store = Store.open(cfg.store_url)
    executor = LocalExecutor(workers=1)
    try:
        yield {"cfg": cfg, "store": store, "artifacts": open_artifacts(cfg.artifacts_url), "executor": executor}
    finally:
        executor.shutdown()
        store.close()


def test_a_tick_without_a_champion_changes_nothing(parts: dict[str, Any]) -> None:
    after: list[int] = []
    ctl = Controller(**parts, inline=True, after_tick=lambda: after.append(1))
    result = ctl.tick(now=datetime(2024, 1, 1, tzinfo=UTC))
    assert result.actions == ["no champion yet: run 'modelpilot train'"]
    assert result.phase == "idle" and result.summary is None and result.retrain is None
    assert parts["store"].get_state_record(NAMESPACE, "churn") is None  # nothing stored
    assert after == [1]


@pytest.mark.parametrize("error", [DataError("the log is unreadable"), RuntimeError("boom")])
def test_the_loop_keeps_ticking_when_a_tick_raises(parts: dict[str, Any], error: Exception,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    after: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise error

    def failing_hook() -> None:
        after.append(1)
        raise RuntimeError("the webhook outbox is down")

    ctl = Controller(**parts, inline=True, before_tick=failing, after_tick=failing_hook)
    with caplog.at_level(logging.ERROR, logger="modelpilot.controller"):
        ctl.run(interval=0, max_ticks=3)
    assert len(calls) == 3 and len(after) == 3  # every tick ran, and the hook after each one
    messages = [r.getMessage() for r in caplog.records]
    assert sum("controller tick" in m for m in messages) == 3, messages
    assert sum("after-tick hook of churn failed" in m for m in messages) == 3, messages
