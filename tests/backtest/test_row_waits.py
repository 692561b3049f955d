"""A cooldown in labelled rows holds the same on an integer time column, whatever its unit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelpilot.backtest import parse_policies, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario
from modelpilot.executors import LocalExecutor

BATCH = 500
COOLDOWN_ROWS = 2000  # four batches of labelled rows


def _replay(unit: str, scale: int, offset: int, executor: LocalExecutor) -> dict[str, Any]:
    frame, info = scenario("sudden", 9000, seed=0)
    day = np.arange(len(frame)) // 10  # ten rows a day
    frame = frame.drop(columns="ts").assign(day=day * scale + offset)
    cfg = PilotConfig.from_dict({"model": {"name": "bt", "target": "y", "time_column": "day"},
                                 "data": {"time_unit": unit},
                                 # the change trigger is paced by rows anyway: off, so every retrain
                                 # comes from the performance trigger and its cooldown
                                 "triggers": {"performance_drop": {"cooldown_rows": COOLDOWN_ROWS},
                                              "change": {"enabled": False}}})
    result = run_backtest(frame, cfg, parse_policies(["dynamic"], cfg), batch=BATCH, initial=1500, label_delay=1,
                          executor=executor, scenario=info)
    assert result.clock is not None and result.scenario is not None
    return {"clock": result.clock["kind"], "drifts": result.scenario["drift_batches"],
            "batches": result.policy("dynamic")["retrain_batches"]}


@pytest.mark.slow
def test_a_row_cooldown_holds_identically_on_an_ordinal_clock_and_on_epoch_seconds(executor: LocalExecutor) -> None:
    """The same 900 days, once as day numbers (an ordinal clock: a step a day) and once as epoch
    seconds (86,400 steps a day): a cooldown in time would mean 230 days on one and 40 minutes
    on the other; in labelled rows the retrains fall on the same batches."""
    ordinal = _replay("ordinal", 1, 0, executor)
    epoch = _replay("s", 86_400, 1_600_000_000, executor)
    assert (ordinal["clock"], epoch["clock"]) == ("ordinal", "epoch")
    assert ordinal["drifts"] == epoch["drifts"] == [3, 9]
    batches = ordinal["batches"]
    assert batches == epoch["batches"]
    assert len(batches) >= 2 and 3 <= batches[0] <= 6, batches  # fired after the first drift, and again
    # a firing at the end of batch b: the rows served after it are batch b+1 on; with one batch of
    # label delay, COOLDOWN_ROWS of them are labelled at the tick of batch b + COOLDOWN_ROWS/BATCH + 1
    wait = COOLDOWN_ROWS // BATCH + 1
    assert all(b - a >= wait for a, b in zip(batches, batches[1:], strict=False)), batches
    assert batches[1] <= max(batches[0] + wait, 9) + 2, batches  # the second drift, once the cooldown is over
