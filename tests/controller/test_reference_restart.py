"""After a located change the trigger references restart from the first post-change champion.

The level a model reached on the old concept is no bar for the new one: a champion trained on
the few hundred rows after a change, measured against it, would keep the performance trigger
firing batch after batch while the refreshes are already bringing the model up to the full
window. Refreshes and ordinary promotions still carry the better reference.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelpilot.config import PilotConfig
from modelpilot.controller.rollout import promoted_reference
from modelpilot.policy.triggers import TriggerState, reset_reference
from modelpilot.store import Store

NOW = datetime(2026, 1, 7, 12, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


def _state_with_reference(value: float) -> dict[str, Any]:
    state = reset_reference(TriggerState(), value, "v1 validation", metric="rmse", now=NOW)
    return {"triggers": state.to_dict()}


def _promote(store: Store, state: dict[str, Any], score: float, numbers: dict[str, Any]) -> TriggerState:
    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "evaluation": {"metric": "rmse"}})
    version = store.register_version("m", run_id=None, artifact_key="k.skops", reference_key=None, signature=[],
                                     task="regression", classes=None, metrics={"rmse": score}, lineage={})
    promoted_reference(cfg, store, state, version, score, NOW, numbers)
    return TriggerState.from_dict(state["triggers"])


@pytest.mark.parametrize(("numbers", "expected", "carried"), [
    ({"after_change": True, "champion_stale": True}, 1.6, 0),   # first model after a change: restart
    ({"after_change": True, "champion_stale": False}, 1.25, 1),  # a refresh: the better level is kept
    ({"after_change": False, "champion_stale": False}, 1.25, 1),  # no change: carried
    ({}, 1.25, 1),  # a rollout started before the gate recorded it: carried, as before
])
def test_the_reference_restarts_only_when_the_replaced_champion_was_stale(
    store: Store, numbers: dict[str, Any], expected: float, carried: int
) -> None:
    state = _promote(store, _state_with_reference(1.25), 1.6, numbers)
    assert state.reference is not None
    assert state.reference.value == pytest.approx(expected)
    assert state.reference.carried == carried

