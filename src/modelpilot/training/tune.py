"""Hyperparameter search with Optuna, trials running in parallel through the executor.

Design: one study in storage every worker reaches, and ``tuning.parallel`` workers
submitted to the :class:`~modelpilot.executors.Executor`, each running ``study.optimize``
on the same study with its share of ``tuning.n_trials`` (so the total is exact). Because
every worker sees every trial through the storage, the TPE sampler learns from all of
them (``constant_liar`` keeps concurrent workers from sampling the same point) and the
``MedianPruner`` compares a trial with all others.

The storage (:func:`storage_for`): ``tuning.storage`` when set (any Optuna RDB URL);
else, on a PostgreSQL store, the store's own database in a schema of its own (Optuna's
tables and its Alembic version table never meet the store's); else, on a SQLite store,
an append-only journal file in a temporary folder — a SQLite store is one machine's, and
so is that file. Every study is named after its run (``<model>.run-<id>``), so studies
of several runs share one storage without meeting. Each trial records the node it ran on
(user attribute ``node``).

Pruning needs intermediate scores: an *iterative* estimator (warm start over
``max_iter`` / ``n_estimators``, e.g. HistGradientBoosting) is grown in
``_STAGES`` steps on the inner holdout and reports the validation score after each;
with ``tuning.folds > 1`` the running mean after each fold is reported instead.

The worker function is module-level and receives only plain, picklable data, as the
``spawn`` start method (and Ray) require. The caller watches the journal while the
workers run, so each finished trial is logged to the store and reported as progress
as soon as it ends, not when the study does.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
import sqlalchemy as sa
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, train_test_split

from modelpilot.config import ParamSpec
from modelpilot.errors import ConfigError
from modelpilot.executors import Executor, current_node
from modelpilot.metrics import lower_is_better
from modelpilot.training.estimators import iteration_param, make_estimator
from modelpilot.training.evaluate import compute_metrics, predict_all
from modelpilot.training.preprocess import build_pipeline

_STAGES = 4
_HOLDOUT = 0.2
_POLL_SECONDS = 0.2
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class TuneJob:
    """Everything one worker needs; plain data only, so it pickles for any executor."""

    storage: str  # an RDB URL, or "journal:<path>" (see open_storage)
    study_name: str
    estimator: str | None
    task: str
    base_params: dict[str, Any]
    space: dict[str, dict[str, Any]]
    features: Any
    X: pd.DataFrame
    y: pd.Series
    metric: str
    folds: int
    pruning: bool
    time_ordered: bool
    seed: int
    n_trials: int
    timeout: float | None


@dataclass
class TuneResult:
    best_params: dict[str, Any]
    best_value: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)


def trial_record(t: FrozenTrial) -> dict[str, Any]:
    """A trial as plain JSON: ``{number, params, value, state}``."""
    value = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
    return {"number": t.number, "params": dict(t.params), "value": value, "state": t.state.name.lower(),
            "node": t.user_attrs.get("node")}


_JOURNAL = "journal:"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage ``url`` names: ``journal:<path>`` (a journal file) or an RDB URL."""
    if url.startswith(_JOURNAL):
        return JournalStorage(JournalFileBackend(url[len(_JOURNAL):]))
    return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})


_SEARCH_PATH = re.compile(r"-c\s*search_path=([^\s]+)")


def storage_for(store_url: str, configured: str | None = None) -> str | None:
    """Where a study lives: ``configured`` (``tuning.storage``) when set, a schema of the
    store's own PostgreSQL database (created here), or ``None`` for a temporary journal
    file (a SQLite store: one machine).

    Raises:
        ConfigError: the store is neither SQLite nor PostgreSQL and no storage is configured.
    """
    if configured:
        return configured
    url = sa.make_url(store_url)
    if url.get_backend_name() == "sqlite":
        return None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"tuning.storage: no Optuna storage for a {url.get_backend_name()} store; "
            "set tuning.storage to an Optuna RDB URL every worker reaches"
        )
    options = str(url.query.get("options", ""))
    found = _SEARCH_PATH.search(options)
    schema = (found.group(1).split(",")[0].strip('"') if found else "modelpilot") + "_optuna"
    path = f"-csearch_path={schema}"
    options = _SEARCH_PATH.sub(path, options) if found else f"{options} {path}".strip()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


@contextlib.contextmanager
def _storage_url(storage: str | None) -> Iterator[str]:
    if storage is not None:
        yield storage
        return
    with tempfile.TemporaryDirectory(prefix="modelpilot-tune-") as tmp:
        yield _JOURNAL + str(Path(tmp) / "journal.log")


def _suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, raw in space.items():
        spec = ParamSpec.model_validate(raw)
        if spec.type == "categorical":
            params[name] = trial.suggest_categorical(name, spec.choices or [])
        elif spec.type == "int":
            step = int(spec.step or 1)
            params[name] = trial.suggest_int(name, int(spec.low or 0), int(spec.high or 0), step=step, log=spec.log and step == 1)
        else:
            params[name] = trial.suggest_float(name, float(spec.low or 0.0), float(spec.high or 0.0), step=None if spec.log else spec.step, log=spec.log)
    return params


def _score(job: TuneJob, model: Any, X: Any, y: pd.Series) -> float:
    pred, proba = predict_all(model, X, job.task)
    classes = np.asarray(model.classes_) if job.task == "classification" else None
    value = compute_metrics(job.task, y.to_numpy(), pred, proba, classes, only=[job.metric]).get(job.metric)
    return float("nan") if value is None else value


def _folds(job: TuneJob) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(job.X)
    positions = np.arange(n)
    if job.folds == 1:
        if job.time_ordered:  # rows arrive sorted by time: validate on the latest ones
            cut = int(n * (1 - _HOLDOUT))
            return [(positions[:cut], positions[cut:])]
        strat = job.y.astype(str).to_numpy() if job.task == "classification" else None
        if strat is not None and np.unique(strat, return_counts=True)[1].min() < 2:
            strat = None
        fit, val = train_test_split(positions, test_size=_HOLDOUT, random_state=job.seed, stratify=strat)
        return [(fit, val)]
    if job.time_ordered:
        return list(TimeSeriesSplit(n_splits=job.folds).split(positions))
    if job.task == "classification":
        return list(StratifiedKFold(job.folds, shuffle=True, random_state=job.seed).split(positions, job.y.astype(str)))
    return list(KFold(job.folds, shuffle=True, random_state=job.seed).split(positions))


def _objective(job: TuneJob, node: str, trial: optuna.Trial) -> float:
    trial.set_user_attr("node", node)
    params = {**job.base_params, **_suggest(trial, job.space)}
    folds = _folds(job)
    est = make_estimator(job.estimator, job.task, params, job.seed)
    staged = job.pruning and job.folds == 1 and iteration_param(est) is not None
    if staged:
        fit, val = folds[0]
        pipe = build_pipeline(job.features, est)
        pre, model = pipe[:-1], pipe[-1]
        Xf, Xv = pre.fit_transform(job.X.iloc[fit], job.y.iloc[fit]), pre.transform(job.X.iloc[val])
        name = iteration_param(model) or "max_iter"
        total = int(model.get_params()[name])
        sizes = np.unique(np.linspace(max(1, total // _STAGES), total, _STAGES).round().astype(int))
        score = float("nan")
        for step, size in enumerate(sizes):
            # warm start continues from the rounds already fitted instead of starting over
            model.set_params(warm_start=True, **{name: int(size)})
            model.fit(Xf, job.y.iloc[fit])
            score = _score(job, model, Xv, job.y.iloc[val])
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score
    scores: list[float] = []
    for step, (fit, val) in enumerate(folds):
        pipe = build_pipeline(job.features, make_estimator(job.estimator, job.task, params, job.seed))
        pipe.fit(job.X.iloc[fit], job.y.iloc[fit])
        scores.append(_score(job, pipe, job.X.iloc[val], job.y.iloc[val]))
        trial.report(float(np.mean(scores)), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(np.mean(scores))


def run_worker(job: TuneJob, worker: int) -> int:
    """Run ``job.n_trials`` trials of the shared study; returns how many ran. (Executor entry point.)"""
    optuna.logging.set_verbosity(logging.WARNING)
    storage = open_storage(job.storage)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if job.pruning else optuna.pruners.NopPruner()
    )
    sampler = optuna.samplers.TPESampler(seed=job.seed + worker, constant_liar=True)
    study = optuna.load_study(study_name=job.study_name, storage=storage, sampler=sampler, pruner=pruner)
    before = len(study.get_trials(deepcopy=False))
    node = current_node()
    # the executor limits this worker's BLAS/OpenMP threads to the cores of its slot: OpenMP
    # threads of several workers fighting over the same cores made trials ~4x slower.
    # A trial whose parameters the estimator rejects fails alone instead of ending the study.
    study.optimize(lambda t: _objective(job, node, t), n_trials=job.n_trials, timeout=job.timeout,
                   catch=(ValueError, ConfigError))
    return len(study.get_trials(deepcopy=False)) - before


def tune(
    job_template: dict[str, Any],
    executor: Executor,
    *,
    n_trials: int,
    parallel: int,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    storage: str | None = None,
    study_name: str = "modelpilot",
) -> TuneResult:
    """Run the study and return the best parameters.

    Args:
        job_template: the :class:`TuneJob` fields except ``storage_path``, ``study_name``
            and ``n_trials`` (filled in here).
        executor: where the workers run.
        n_trials: total trials across workers (exact).
        parallel: how many workers run ``study.optimize`` at once.
        on_trial: called in this process with each finished trial's record, in order.
        storage: where the study lives (see :func:`storage_for`); ``None`` = a journal file
            in a temporary folder, which only workers on this machine reach.
        study_name: the study's name, new in ``storage``.

    Returns:
        The best parameters (of the search space only), its value and every trial.

    Raises:
        ConfigError: no trial completed (every one failed): the message quotes the first failure.
    """
    optuna.logging.set_verbosity(logging.WARNING)
    direction: Literal["minimize", "maximize"] = "minimize" if lower_is_better(job_template["metric"]) else "maximize"
    workers = max(1, min(parallel, n_trials))
    shares = [n_trials // workers + (1 if i < n_trials % workers else 0) for i in range(workers)]
    with _storage_url(storage) as url:
        study = optuna.create_study(study_name=study_name, storage=open_storage(url), direction=direction)
        futures = [
            executor.submit(run_worker, TuneJob(storage=url, study_name=study_name, n_trials=share, **job_template), i)
            for i, share in enumerate(shares)
        ]
        seen: set[int] = set()

        def drain() -> None:
            finished = sorted(study.get_trials(deepcopy=False, states=_FINISHED), key=lambda t: t.number)
            for t in finished:
                if t.number not in seen:
                    seen.add(t.number)
                    if on_trial is not None:
                        on_trial(trial_record(t))

        pending = set(futures)
        while pending:
            _, pending = concurrent.futures.wait(pending, timeout=_POLL_SECONDS)
            drain()
        for f in futures:
            f.result()  # re-raise a worker's unexpected error here
        drain()
        trials = [trial_record(t) for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)]
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE and t.value is not None and np.isfinite(t.value)]
        if not complete:
            failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            reason = failed[0].system_attrs.get("fail_reason", "unknown") if failed else "no trial finished in time"
            raise ConfigError(
                f"tuning: no trial completed ({reason}); fix tuning.space / model.params, raise "
                "tuning.timeout, or set tuning.enabled: false"
            )
        best = min(complete, key=lambda t: t.value) if direction == "minimize" else max(complete, key=lambda t: t.value)  # type: ignore[arg-type,return-value]
        return TuneResult(best_params=dict(best.params), best_value=best.value, trials=trials)
