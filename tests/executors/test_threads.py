"""Every job runs with its BLAS/OpenMP thread pools limited to the cores its slot owns."""

from __future__ import annotations

from typing import Any

import pandas as pd
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

from modelpilot.artifacts import open_artifacts
from modelpilot.config import PilotConfig
from modelpilot.data import synth
from modelpilot.executors import LocalExecutor, limit_threads, run_limited, slot_threads
from modelpilot.executors.base import usable_cpus
from modelpilot.store import Store
from modelpilot.training import train


def pool_threads() -> list[int]:
    """The thread count of every BLAS/OpenMP pool loaded in this process (loads sklearn's)."""
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime a fit uses)

    return [int(p["num_threads"]) for p in threadpool_info()]


def nested(inner: int) -> tuple[list[int], list[int]]:
    """A job that asks for more threads inside itself than its slot owns."""
    outer = pool_threads()
    with limit_threads(inner):
        return outer, pool_threads()


def test_a_job_in_the_local_pool_runs_with_its_slot_of_threads() -> None:
    with LocalExecutor(workers=2, threads=1) as ex:
        outer, inner = ex.submit(nested, 8).result()
    assert outer and set(outer) == {1}  # at least one pool (OpenMP) was found and limited
    assert set(inner) == {1}  # a nested limit never raises the slot's ceiling


def test_the_default_slot_is_an_equal_share_of_the_cores() -> None:
    cores = usable_cpus()
    assert slot_threads(1) == cores
    assert slot_threads(cores * 4) == 1  # more workers than cores: one thread each, never zero
    with LocalExecutor(workers=1) as ex:
        assert ex.threads == cores
        assert set(ex.submit(pool_threads).result()) == {cores}
    assert run_limited(1, slot_threads, 1) == 1  # a pool made inside a job: within the job's share


def test_train_fits_with_the_executors_threads(tmp_path: Any) -> None:
    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "churned"}, "tuning": {"enabled": False},
                                 "evaluation": {"learning_curve": False, "permutation_repeats": 1}},
                                base_dir=tmp_path)
    seen: dict[str, list[int]] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        if done == 0:  # called in this process as each stage starts: read the pools' limits then
            seen[stage] = pool_threads()

    data: pd.DataFrame = synth.customers(400, seed=1)
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store, LocalExecutor(workers=2, threads=1) as ex:
        train(cfg, store, open_artifacts(str(tmp_path / "artifacts")), ex, data=data, progress=progress)
    assert set(seen["fit"]) == {1} and set(seen["evaluate"]) == {1}
    assert usable_cpus() == 1 or set(pool_threads()) != {1}  # restored after the run
