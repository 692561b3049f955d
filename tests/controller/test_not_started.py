"""Why a due retrain did not start: one event of the right kind, with the reason a person reads.

:func:`~modelpilot.controller.retrain.not_started` on a real SQLite store: waiting for rows
after a change is remembered (one ``retrain_waiting`` event, not one per tick), a
configuration or data problem is ``retrain_skipped``, failed data checks are
``retrain_blocked`` naming the checks, and anything else is ``retrain_failed`` with the
exception's type.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelpilot.config import PilotConfig
from modelpilot.controller.data import WaitForData
from modelpilot.controller.retrain import not_started
from modelpilot.data.validation import CheckResult, ValidationReport
from modelpilot.errors import ConfigError, ValidationFailed
from modelpilot.policy.triggers import TriggerOutcome, TriggerState
from modelpilot.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NO_TRIGGERS = TriggerOutcome(decisions=[], retrain=True, reason="performance dropped", new_state=TriggerState())


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def _cfg() -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "m", "target": "y"}})


def _events(store: Store) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(e.kind, e.reason, e.numbers) for e in reversed(store.events(model="m"))]


def test_a_retrain_waiting_for_rows_is_recorded_once_and_remembered(store: Store) -> None:
    state: dict[str, Any] = {"waiting": None}
    action = not_started(_cfg(), store, state, NO_TRIGGERS, "drift", WaitForData("40 of 100 rows after the change"), T0)
    assert action == "retrain waiting: 40 of 100 rows after the change"
    assert state["waiting"] == {"reason": "drift", "since": T0.isoformat()}
    later = not_started(_cfg(), store, state, NO_TRIGGERS, "drift", WaitForData("60 of 100 rows"), T0 + timedelta(hours=1))
    assert later == "retrain waiting: 60 of 100 rows"
    assert state["waiting"]["since"] == T0.isoformat()
    assert _events(store) == [("retrain_waiting", "drift; 40 of 100 rows after the change", {})]


@pytest.mark.parametrize(("exc", "kind", "why"), [
    (ConfigError("retraining.source: no such file"), "retrain_skipped", "retraining.source: no such file"),
    (RuntimeError("disk full"), "retrain_failed", "RuntimeError: disk full"),
    (RuntimeError(), "retrain_failed", "RuntimeError"),
])
def test_a_retrain_that_cannot_start_is_one_event_saying_why(store: Store, exc: Exception, kind: str, why: str) -> None:
    state: dict[str, Any] = {"waiting": {"reason": "drift", "since": T0.isoformat()}}
    action = not_started(_cfg(), store, state, NO_TRIGGERS, "drift", exc, T0)
    assert action == f"{kind.replace('_', ' ')}: {why}"
    assert _events(store) == [(kind, f"{why}; the champion keeps serving", {})]
    assert "waiting" not in state


def test_failed_data_checks_block_the_retrain_and_name_each_check_once(store: Store) -> None:
    report = ValidationReport([CheckResult("missing", "fail", "too many missing"), CheckResult("ranges", "pass", "ok"),
                               CheckResult("scale", "fail", "10x"), CheckResult("missing", "fail", "again")])
    state: dict[str, Any] = {}
    action = not_started(_cfg(), store, state, NO_TRIGGERS, "drift", ValidationFailed("checks failed", report), T0)
    assert action == "retrain blocked: checks failed"
    assert _events(store) == [("retrain_blocked", "checks failed; the champion keeps serving",
                               {"checks": ["missing", "scale"]})]
