"""The "Done when" of the backtest issue, on the built-in scenarios over three seeds.

Every run replays the real loop (controller, triggers, data selection, training, gate,
rollout) with the default dynamic policy; sizes are kept small (500-row batches) so the
whole file runs in a couple of minutes on two cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelpilot.backtest import BacktestResult, parse_policies, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario
from modelpilot.executors import LocalExecutor

SEEDS = [0, 1, 2]
BATCH = 500


def _run(name: str, rows: int, seed: int, policies: list[str], executor: LocalExecutor) -> BacktestResult:
    frame, info = scenario(name, rows, seed=seed)
    cfg = PilotConfig.from_dict({"model": {"name": "bt", "target": "y", "time_column": "ts",
                                           "segments": ["segment"], "seed": seed},
                                 "costs": {"value_per_correct_prediction": 1.0}})
    return run_backtest(frame, cfg, parse_policies(policies, cfg), batch=BATCH, label_delay=1,
                        executor=executor, scenario=info)


@pytest.mark.parametrize("seed", SEEDS)
def test_sudden_drift_is_caught_within_three_batches_and_pays(seed: int, executor: LocalExecutor) -> None:
    frame, info = scenario("sudden", 12_000, seed=seed)
    initial = 2000
    drift_batches = [(p - initial) // BATCH for p in info["drift_points"]]
    # the oracle retrains right after every true drift, as soon as its labels are in
    oracle = "at:batches=" + ",".join(str(d + 1) for d in drift_batches)
    result = _run("sudden", 12_000, seed, ["never", "dynamic", oracle], executor)
    assert result.scenario is not None and result.scenario["drift_batches"] == drift_batches
    dynamic, never, best = result.policy("dynamic"), result.policy("never"), result.policy(oracle)
    for d in drift_batches:
        assert any(d <= b <= d + 3 for b in dynamic["retrain_batches"]), (d, dynamic["retrain_batches"])
    assert dynamic["mean_metric"] > never["mean_metric"] + 0.2
    assert dynamic["mean_metric"] >= best["mean_metric"] - 0.01, (dynamic["mean_metric"], best["mean_metric"])
    # each promotion measured against the model it retired, on the rows both scored: it paid
    assert dynamic["value"] > 0 and dynamic["paired"] > 0 and dynamic["served"] > dynamic["paired"]
    assert dynamic["cost"] > 0 and dynamic["train_cpu_seconds"] > 0


@pytest.mark.parametrize(("name", "seed"), [(n, s) for n in ("stationary", "covariate") for s in SEEDS])
def test_no_retrain_without_a_concept_change(name: str, seed: int, executor: LocalExecutor) -> None:
    result = _run(name, 10_000, seed, ["dynamic"], executor)
    dynamic = result.policy("dynamic")
    assert dynamic["retrains"] == 0, dynamic["retrain_reasons"]
    assert dynamic["metric_by_batch"] == result.policy("never")["metric_by_batch"]


@pytest.mark.parametrize("seed", SEEDS)
def test_gradual_drift_is_followed_until_the_model_caught_up(seed: int, executor: LocalExecutor) -> None:
    result = _run("gradual", 12_000, seed, ["never", "dynamic"], executor)
    start, end = result.scenario["drift_batches"] if result.scenario else (0, 0)
    dynamic, never = result.policy("dynamic"), result.policy("never")
    metric: list[Any] = dynamic["metric_by_batch"]
    # retrained again late in the drift, not once half-way and then left
    assert max(dynamic["retrain_batches"]) >= start + 0.75 * (end - start), dynamic["retrain_batches"]
    before = float(np.mean(metric[:start]))
    after = float(np.mean(metric[-3:]))
    assert after >= before - 0.1, (before, metric)
    assert after > float(np.mean(never["metric_by_batch"][-3:])) + 0.4
