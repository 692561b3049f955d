"""The Ray executor on a real two-node cluster (the session's ``ray_address``).

Trials of one search run on both nodes and land in one study in PostgreSQL; a job runs
with the threads of its slot; a killed worker fails its own future only, and is never
retried (a retrain registers a version).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from modelpilot.config import ExecutorConfig
from modelpilot.data import FeatureSpec
from modelpilot.errors import ConfigError
from modelpilot.executors import make_executor
from modelpilot.executors.ray import RayExecutor
from modelpilot.testing import postgres as pg
from modelpilot.training.tune import storage_for, tune


@pytest.fixture
def ray_executor(ray_address: str) -> Iterator[RayExecutor]:
    import ray.cloudpickle

    # ship this module's job functions to the workers by value (they cannot import tests)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    executor = make_executor(ExecutorConfig(kind="ray", address=ray_address, workers=2))
    assert isinstance(executor, RayExecutor)
    yield executor
    executor.shutdown()


def _job() -> dict[str, object]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = pd.Series(2 * X["a"] - X["b"] + rng.normal(0, 0.5, 300))
    return {
        "estimator": None, "task": "regression", "base_params": {},
        "space": {"max_iter": {"type": "int", "low": 10, "high": 30, "step": 10}},
        "features": FeatureSpec(target="y", task="regression", numeric=["a", "b"], categorical=[]),
        "X": X, "y": y, "metric": "rmse", "folds": 1, "pruning": False, "time_ordered": False,
        "seed": 0, "timeout": None,
    }


@pytest.mark.postgres
def test_trials_of_one_search_run_on_both_nodes_and_land_in_one_study(ray_executor: RayExecutor) -> None:
    import ray

    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    with pg.fresh_schema(pg.postgres_url()) as url:
        storage = storage_for(url)
        assert storage is not None
        result = tune(_job(), ray_executor, n_trials=8, parallel=2, storage=storage, study_name="churn.run-1")
        study = optuna.load_study(study_name="churn.run-1", storage=storage)
        trials = study.get_trials()
    ran_on = {t.user_attrs["node"] for t in trials}
    assert len(trials) == 8 and len(result.trials) == 8
    assert ran_on == nodes and len(ran_on) == 2  # one CPU per node: the two workers ran apart


def test_tuning_on_other_nodes_refuses_a_study_in_a_local_file(ray_executor: RayExecutor, tmp_path: Path) -> None:
    from modelpilot.artifacts import open_artifacts
    from modelpilot.config import PilotConfig
    from modelpilot.data import synth
    from modelpilot.store import Store
    from modelpilot.training import train

    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "churned"}, "tuning": {"n_trials": 2}},
                                base_dir=tmp_path)
    with Store.open(cfg.store_url) as store, pytest.raises(ConfigError, match="tuning.storage"):
        train(cfg, store, open_artifacts(cfg.artifacts_url), ray_executor, data=synth.customers(300))


def _pool_threads(inner: int) -> tuple[list[int], list[int], int]:
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime a fit uses)
    from threadpoolctl import threadpool_info

    from modelpilot.executors import limit_threads

    outer = [int(p["num_threads"]) for p in threadpool_info()]
    with limit_threads(inner):
        return outer, [int(p["num_threads"]) for p in threadpool_info()], os.getpid()


def test_a_job_on_ray_runs_with_the_threads_of_its_slot(ray_executor: RayExecutor) -> None:
    outer, inner, pid = ray_executor.submit(_pool_threads, 8).result(timeout=120)
    assert pid != os.getpid()
    assert outer and set(outer) == {ray_executor.threads} == {1}
    assert set(inner) == {1}


def _hold(marker: str) -> int:
    """Append this worker's pid to ``marker``, then wait for ``<marker>.go`` (at most 2 min)."""
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + 120
    while not os.path.exists(marker + ".go") and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid()


def test_a_killed_worker_fails_only_its_own_future_and_is_not_retried(
    ray_executor: RayExecutor, tmp_path: Path
) -> None:
    import ray.exceptions

    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    fa, fb = ray_executor.submit(_hold, a), ray_executor.submit(_hold, b)
    deadline = time.monotonic() + 120
    while not (os.path.exists(a) and os.path.exists(b)):
        assert time.monotonic() < deadline, "the two jobs never started"
        time.sleep(0.05)
    victim = int(Path(a).read_text().split()[0])
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(ray.exceptions.RayError):
        fa.result(timeout=120)
    Path(b + ".go").touch()
    assert fb.result(timeout=120) != victim  # the other job finished on its own worker
    Path(a + ".go").touch()
    time.sleep(1.0)  # a retry would have started by now and written a second pid
    assert Path(a).read_text().split() == [str(victim)]


def test_serve_with_the_controller_never_starts_ray(tmp_path: Path) -> None:
    from modelpilot.config import PilotConfig
    from modelpilot.pilot import Pilot

    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "executor": {"kind": "ray"}},
                                base_dir=tmp_path)
    with pytest.raises(ConfigError, match="modelpilot controller"):
        Pilot(cfg).serve(with_controller=True)


def test_a_backtest_runs_its_policies_as_ray_tasks_with_the_results_of_a_local_run(
    ray_executor: RayExecutor,
) -> None:
    from modelpilot.backtest import parse_policies, run_backtest
    from modelpilot.config import PilotConfig
    from modelpilot.data.synth import scenario

    frame, info = scenario("sudden", 6000, seed=0)
    cfg = PilotConfig.from_dict({"model": {"name": "bt", "target": "y", "time_column": "ts", "seed": 0}})
    policies = parse_policies(["never", "fixed:every=3", "dynamic"], cfg)
    on_ray = run_backtest(frame, cfg, policies, batch=500, executor=ray_executor, scenario=info)
    here = run_backtest(frame, cfg, policies, batch=500, scenario=info)
    assert [p["name"] for p in on_ray.policies] == [p["name"] for p in here.policies]
    for remote, local in zip(on_ray.policies, here.policies, strict=True):
        for key in ("metric_by_batch", "retrain_batches", "retrain_promoted", "retrain_reasons", "mean_metric"):
            assert remote[key] == local[key], (remote["name"], key)
    assert on_ray.policy("fixed:every=3")["retrains"] >= 3  # the replays did decide something


_CLIENT_DRIVER = """
import json, sys
from modelpilot.executors.ray import RayExecutor

def where():
    import os, ray
    return ray.get_runtime_context().get_node_id(), os.getpid()

executor = RayExecutor(address=sys.argv[1], workers=2)
try:
    print(json.dumps([executor.submit(where).result(timeout=120) for _ in range(3)]))
finally:
    executor.shutdown()
"""


def test_a_driver_reaches_the_cluster_through_ray_client(ray_client_address: str, tmp_path: Path) -> None:
    """``executor.address: ray://host:port``: another process joins through the head's Ray
    Client server, and its jobs run on the cluster's nodes, not in the driver."""
    import json
    import subprocess

    import ray

    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert ray_client_address.startswith("ray://127.0.0.1:")
    script = tmp_path / "driver.py"
    script.write_text(_CLIENT_DRIVER)
    done = subprocess.run([sys.executable, str(script), ray_client_address], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    ran = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(ran) == 3 and {node for node, _ in ran} <= nodes
    assert all(pid != os.getpid() for _, pid in ran)
