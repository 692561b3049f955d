"""The Optuna study through the executor: exact trial count, direction, failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelpilot.data import FeatureSpec
from modelpilot.errors import ConfigError
from modelpilot.executors import LocalExecutor
from modelpilot.training.tune import tune


def _job(**overrides: object) -> dict[str, object]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = pd.Series(2 * X["a"] - X["b"] + rng.normal(0, 0.5, 400))
    job: dict[str, object] = {
        "estimator": None, "task": "regression", "base_params": {},
        "space": {"max_iter": {"type": "int", "low": 10, "high": 40, "step": 10},
                  "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True}},
        "features": FeatureSpec(target="y", task="regression", numeric=["a", "b"], categorical=[]),
        "X": X, "y": y, "metric": "rmse", "folds": 2, "pruning": True, "time_ordered": False,
        "seed": 0, "timeout": None,
    }
    job.update(overrides)
    return job


def test_trials_are_exact_reported_in_order_and_minimised(executor: LocalExecutor) -> None:
    seen: list[int] = []
    result = tune(_job(), executor, n_trials=5, parallel=2, on_trial=lambda t: seen.append(t["number"]))
    assert sorted(seen) == [0, 1, 2, 3, 4] and len(result.trials) == 5
    complete = [t["value"] for t in result.trials if t["state"] == "complete"]
    assert result.best_value == min(complete)  # rmse is minimised
    assert set(result.best_params) == {"max_iter", "learning_rate"}


def test_every_trial_failing_is_a_config_error(executor: LocalExecutor) -> None:
    job = _job(space={"max_depth": {"type": "int", "low": -3, "high": -2}})  # invalid for the estimator
    with pytest.raises(ConfigError, match="no trial completed"):
        tune(job, executor, n_trials=2, parallel=2)
