"""The backtest never looks ahead: a batch's labels reach the loop ``label_delay`` batches later.

On a sudden drift, the controller can only see the drifted batch's labels ``label_delay``
ticks after it was served, so no retrain can happen earlier, and until then the dynamic
policy serves exactly what ``never`` serves. A replay that revealed labels sooner (a
look-ahead) would retrain on the drift batch itself and look better than production could.
"""

from __future__ import annotations

import pytest

from modelpilot.backtest import parse_policies, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario
from modelpilot.executors import LocalExecutor

BATCH, INITIAL = 500, 1000


@pytest.mark.parametrize("delay", [0, 2])
def test_no_retrain_before_the_drifted_labels_arrive(delay: int, executor: LocalExecutor) -> None:
    frame, info = scenario("sudden", 6000, seed=0)
    cfg = PilotConfig.from_dict({"model": {"name": "bt", "target": "y", "time_column": "ts", "seed": 0}})
    result = run_backtest(frame, cfg, parse_policies(["never", "dynamic"], cfg), batch=BATCH, label_delay=delay,
                          initial=INITIAL, executor=executor, scenario=info)
    drift = (info["drift_points"][0] - INITIAL) // BATCH
    assert drift == 2 and result.label_delay == delay
    dynamic, never = result.policy("dynamic"), result.policy("never")
    assert dynamic["retrain_batches"], "the drift was never caught"
    # the labels of the drifted batch are revealed at the tick of batch drift + delay
    assert dynamic["retrain_batches"][0] == drift + delay, dynamic["retrain_batches"]
    served_alike = drift + delay + 1  # every batch up to that tick is predicted by the first model
    assert dynamic["metric_by_batch"][:served_alike] == never["metric_by_batch"][:served_alike]
    assert dynamic["metric_by_batch"][served_alike] > never["metric_by_batch"][served_alike]
