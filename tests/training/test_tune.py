"""The Optuna study through the executor: exact trial count, direction, failures, and where
the study lives (the PostgreSQL store's own database, never a local file)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import optuna
import pandas as pd
import pytest
import sqlalchemy as sa

from modelpilot.data import FeatureSpec
from modelpilot.errors import ConfigError
from modelpilot.executors import LocalExecutor
from modelpilot.testing import postgres as pg
from modelpilot.training.tune import storage_for, tune


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


@pytest.fixture
def schema_url() -> Iterator[str]:
    with pg.fresh_schema(pg.postgres_url()) as url:
        yield url


def test_a_sqlite_store_keeps_a_temporary_journal_and_a_configured_storage_wins() -> None:
    assert storage_for("sqlite:////tmp/x/store.db") is None
    assert storage_for("sqlite:////tmp/x/store.db", "postgresql://h/db") == "postgresql://h/db"
    with pytest.raises(ConfigError, match="tuning.storage"):
        storage_for("mysql://h/db")


@pytest.mark.postgres
def test_a_postgresql_store_holds_the_study_in_a_schema_of_its_own(
    schema_url: str, executor: LocalExecutor
) -> None:
    storage = storage_for(schema_url)
    assert storage is not None and "_optuna" in storage
    finished: list[int] = []
    result = tune(_job(), executor, n_trials=4, parallel=2, on_trial=lambda t: finished.append(t["number"]),
                  storage=storage, study_name="churn.run-7")
    assert sorted(finished) == [0, 1, 2, 3]
    # the workers wrote to the database: the study is there, with every trial and its node
    study = optuna.load_study(study_name="churn.run-7", storage=storage)
    assert len(study.trials) == 4
    assert {t.user_attrs["node"] for t in study.trials} == {t["node"] for t in result.trials} != {None}
    # in its own schema: the store's schema has none of Optuna's tables (nor its Alembic table)
    engine = sa.create_engine(schema_url)
    try:
        assert "trials" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    # a second study of another run shares the storage without meeting the first
    tune(_job(), executor, n_trials=2, parallel=1, storage=storage, study_name="churn.run-8")
    assert len(optuna.load_study(study_name="churn.run-7", storage=storage).trials) == 4
