"""Every retraining set passes the same checks as `train` before a retrain starts.

Each test feeds the controller traffic whose new labelled rows are bad in one way, lets a
retrain become due, and checks that it is blocked with ONE ``retrain_blocked`` event naming
the failing check, that nothing was trained and that the champion keeps serving.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from controller_helpers import kinds, scored, stream
from test_controller import _after

from modelpilot.artifacts import get_json
from modelpilot.controller import NAMESPACE
from modelpilot.controller.checks import check_retraining_data
from modelpilot.controller.data import FEATURE_PREFIX, log_to_frame, select_retraining_data
from modelpilot.controller.window import FrameWindow
from modelpilot.errors import ValidationFailed


def _window(log: pd.DataFrame) -> FrameWindow:
    window = FrameWindow()
    window.append(log)
    return window


def _text_in_numeric(log: pd.DataFrame) -> pd.DataFrame:
    col = FEATURE_PREFIX + "monthly_spend"
    log[col] = log[col].astype(object)
    log.loc[log.index[::3], col] = "lots"
    return log


def _one_class(log: pd.DataFrame) -> pd.DataFrame:
    log["label"] = "1"
    return log


def _scaled(log: pd.DataFrame) -> pd.DataFrame:
    log[FEATURE_PREFIX + "monthly_spend"] = log[FEATURE_PREFIX + "monthly_spend"] * 10  # cents for tens
    return log


def _swapped(log: pd.DataFrame) -> pd.DataFrame:
    a, b = FEATURE_PREFIX + "monthly_spend", FEATURE_PREFIX + "support_calls"
    log[[a, b]] = log[[b, a]].to_numpy()
    return log


@pytest.mark.parametrize(
    ("spoil", "check", "says"),
    [
        (_text_in_numeric, "types", "column 'monthly_spend' is declared float but"),
        (_one_class, "class_balance", "new labelled rows: the target 'churned' has a single class (1)"),
        (_scaled, "scale", "column 'monthly_spend' is"),
        (_swapped, "scale", "columns 'monthly_spend' and 'support_calls' look swapped"),
    ],
    ids=["text-in-numeric", "one-class", "scaled-10x", "swapped-columns"],
)
def test_a_bad_batch_blocks_the_retrain_and_the_champion_keeps_serving(
    make_pilot: Any, spoil: Any, check: str, says: str
) -> None:
    pilot = make_pilot()
    rows = stream(400, 1000)
    ctl = pilot.controller(window=_window(spoil(scored(pilot, rows))), inline=True)

    first = ctl.tick(now=_after(rows), force_retrain_reason="a retrain is due")
    again = ctl.tick(now=_after(rows, minutes=2))  # the next tick: still bad data, no new attempt

    (event,) = pilot.store.events(model="churn", kind="retrain_blocked")
    assert check in event.numbers["checks"], event.numbers
    assert says in event.reason, event.reason
    assert event.reason.endswith("the champion keeps serving")
    assert first.retrain is None and again.retrain is None and first.error is None
    assert kinds(pilot, "retrain_started", "retrain_failed", "tick_failed") == []
    assert pilot.store.list_runs(model="churn", kind="retrain") == []
    assert [v.version for v in pilot.store.list_versions("churn")] == [1]
    assert pilot.store.get_alias("churn", "champion") == 1
    state = pilot.store.get_state_record(NAMESPACE, "churn")
    assert state is not None and state.value["phase"] == "idle"


def test_a_performance_drop_on_bad_data_fires_once_then_waits_its_cooldown(make_pilot: Any) -> None:
    pilot = make_pilot()
    rows = stream(400, 1000)
    ctl = pilot.controller(window=_window(_text_in_numeric(scored(pilot, rows))), inline=True)
    for minutes in (1, 2, 3):
        ctl.tick(now=_after(rows, minutes=minutes))
    seen = kinds(pilot, "trigger_fired", "retrain_blocked")
    # the triggers of the first tick fired (one or several), then the blocked retrain; nothing after
    assert seen.count("retrain_blocked") == 1 and seen[-1] == "retrain_blocked", seen
    assert set(seen[:-1]) == {"trigger_fired"}


def _checked(pilot: Any, log: pd.DataFrame) -> Any:
    version = pilot.store.get_version("churn", 1)
    reference = get_json(pilot.artifacts, version.reference_key)
    labelled = log_to_frame(log, pilot.cfg, version.classes)
    history = pd.read_parquet(pilot.cfg.base_dir / "data" / "customers.parquet")
    data = select_retraining_data(pilot.cfg, labelled, history=history)
    return check_retraining_data(pilot.cfg, data, version, reference)


def test_clean_drifted_data_passes_every_check(make_pilot: Any) -> None:
    """Concept drift that a retrain should follow is not mistaken for a bad batch."""
    pilot = make_pilot()
    report = _checked(pilot, scored(pilot, stream(400, 1000)))
    assert report.ok, report.to_dict()
    assert report.get("scale").status == "pass" and report.get("types").status == "pass"


def test_labels_that_arrived_empty_are_a_missing_target_not_unknown_classes(make_pilot: Any) -> None:
    """An all-NaN target fails the ``missing`` check with that reason, even among history rows."""
    pilot = make_pilot()
    log = scored(pilot, stream(400, 1000))
    log["label"] = np.where(np.arange(len(log)) % 2, "nan", "")
    report = _checked(pilot, log)
    (failed,) = [c for c in report.failed if "new labelled rows" in c.message and c.name == "missing"]
    assert failed.message == "800 new labelled rows: the target 'churned' has no values (all 800 rows are missing)"
    with pytest.raises(ValidationFailed, match="has no values"):
        report.raise_if_failed()
