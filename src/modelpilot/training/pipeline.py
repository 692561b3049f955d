"""``train``: load → validate → split → tune → fit → evaluate → profile → package → register.

Each step is a plain function over plain data (the modules of this package); this one
composes them and writes every result to the store as it goes. Nothing is registered
before the data has been validated: a failure at any step finishes the run as
``failed`` with the error message and re-raises, leaving versions and aliases as they were.

Example (needs a store, an artifact store and an executor)::

    result = train(cfg, store, artifacts, executor)
    print(result.version, result.metrics, result.aliases)
"""

from __future__ import annotations

import contextlib
import glob as _glob
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import ArtifactStore, check_model
from modelpilot.config import PilotConfig
from modelpilot.data import FeatureSpec, load_source, resolve_features, snapshot, validate
from modelpilot.errors import ConfigError, Conflict, DataError
from modelpilot.executors import Executor, limit_threads
from modelpilot.metrics import overfit_gap
from modelpilot.policy.gates import threshold_gate
from modelpilot.store import Store
from modelpilot.training import tune as tuning
from modelpilot.training.estimators import (
    check_param_names,
    default_space,
    estimator_path,
    make_estimator,
)
from modelpilot.training.evaluate import (
    METRICS,
    compute_metrics,
    evaluate,
    learning_curve,
    permutation_feature_importance,
    predict_all,
    segment_metrics,
)
from modelpilot.training.fit import fit_final
from modelpilot.training.package import save_bundle, save_onnx, save_reference
from modelpilot.training.profile import Profiler, estimate_cost
from modelpilot.training.result import TrainResult, to_jsonable
from modelpilot.training.split import split_frame

Progress = Callable[[str, int, int | None], None]


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


def git_sha(base_dir: Path) -> str | None:
    """``git rev-parse HEAD`` in ``base_dir``, or ``None`` outside a repository (or without git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=base_dir, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _source_bytes(cfg: PilotConfig) -> int:
    """Size of the local files ``data.source`` names (0 for queries and remote URLs)."""
    src = cfg.data.source
    if not src or "://" in src:
        return 0
    path = cfg.resolve_path(src)
    files = [Path(f) for f in _glob.glob(str(path), recursive=True)] if any(c in src for c in "*?[") else (
        list(path.iterdir()) if path.is_dir() else [path])
    return sum(f.stat().st_size for f in files if f.is_file())


def primary_metric(cfg: PilotConfig, task: str) -> str:
    """``evaluation.metric`` if it suits ``task``, else the task's default.

    Checked before any work: ``tuning.metric`` and the ``gates.min_metrics`` keys must be
    metrics of ``task`` too.

    Raises:
        ConfigError: a configured metric belongs to the other task.
    """
    metric = cfg.evaluation.metric or ("rmse" if task == "regression" else "accuracy")
    tuning_metric = cfg.tuning.metric or metric
    named = [(metric, "evaluation.metric"), (tuning_metric, "tuning.metric")]
    named += [(name, f"gates.min_metrics.{name}") for name in sorted(cfg.gates.min_metrics)]
    for name, setting in named:
        if name not in METRICS[task]:
            raise ConfigError(
                f"{setting}: {name!r} is not a {task} metric; use one of {', '.join(METRICS[task])}"
            )
    return metric


def _scores(proba: np.ndarray | None, pred: np.ndarray, task: str) -> np.ndarray | None:
    if task == "regression":
        return pred.astype(np.float64)
    return proba


def _time_sorted(train: np.ndarray, times: pd.Series) -> np.ndarray:
    """Training positions in time order (the tuning holdout is then the latest rows)."""
    order = times.iloc[train].reset_index(drop=True).sort_values(kind="stable", na_position="first").index
    sorted_train: np.ndarray = train[order.to_numpy()]
    return sorted_train


def train(
    cfg: PilotConfig,
    store: Store,
    artifacts: ArtifactStore,
    executor: Executor,
    *,
    data: pd.DataFrame | None = None,
    kind: str = "train",
    parent_version: int | None = None,
    warm_start_from: Pipeline | None = None,
    params_override: dict[str, Any] | None = None,
    tune: bool | None = None,
    idempotency_key: str | None = None,
    promote_first: bool = True,
    progress: Progress | None = None,
    resampled_rows: int = 0,
) -> TrainResult:
    """Train, evaluate, package and register one model version.

    Args:
        cfg: the configuration (model, data, split, tuning, evaluation, gates, costs).
        store: the metadata store (run, metrics, dataset, version, alias, events).
        artifacts: where the model bundle and the reference profile are written.
        executor: where tuning trials run.
        data: the training rows; ``None`` reads ``data.source`` / ``data.query``.
        kind: the run kind (``"train"``, ``"retrain"``, ``"backtest"``...).
        parent_version: recorded in the lineage (the version this one replaces).
        warm_start_from: a fitted bundle to continue from (see :mod:`.fit`).
        params_override: estimator parameters that win over ``model.params`` and are
            excluded from the search.
        tune: force tuning on/off; ``None`` = ``tuning.enabled``.
        idempotency_key: when a version with this key exists it is returned as is
            (``reused=True``) and nothing is trained.
        promote_first: point ``champion`` at this version when it passes the gate and the
            model has no champion yet. An existing champion is never moved here: that
            is the champion comparison's decision.
        resampled_rows: the last rows of ``data`` are resampled copies (an upsampled
            segment): they are trained on, but the reference profile is made without them.
        progress: ``progress(stage, done, total)``: each stage reports ``(0, 1)`` when it
            starts and ``(1, 1)`` when it ends; ``"tune"`` reports ``(trials done, n_trials)``.

    Returns:
        The :class:`TrainResult`.

    Raises:
        DataError: unreadable data, unknown columns, too few rows to split.
        ValidationFailed: a validation check configured to ``fail`` failed.
        ConfigError: unknown estimator or parameter, or a metric of the other task.
    """
    report = progress or _no_progress
    name = cfg.model.name
    if idempotency_key is not None:
        existing = store.find_version_by_key(name, idempotency_key)
        if existing is not None:
            return _reused(store, existing)
    prof = Profiler()
    written0 = artifacts.bytes_written
    with prof.stage("load"):
        report("load", 0, 1)
        if data is None:
            data = load_source(cfg)
            prof.bytes_read += _source_bytes(cfg)
            source = cfg.data.source or "data.query"
        else:
            source = "dataframe"
        snap = snapshot(data, source, cfg.model.time_column)
        store.add_dataset(snap.hash, snap.source, snap.rows, snap.schema, time_min=snap.time_min, time_max=snap.time_max)
        report("load", 1, 1)
    sha = git_sha(cfg.base_dir)
    run = store.create_run(
        name,
        kind=kind,
        params={"estimator": cfg.model.estimator, "model_params": dict(cfg.model.params), "params_override": dict(params_override or {})},
        tags={"git_sha": sha, "config_hash": cfg.config_hash(), "source": source, "parent_version": parent_version,
              # who trains: a controller that resumes an interrupted retrain stops a worker that outlived it
              "process": {"host": socket.gethostname(), "pid": os.getpid(), "idempotency_key": idempotency_key}},
        dataset_hashes=[snap.hash],
    )
    try:
        # this job owns one executor slot's cores: its fit and evaluation use no more threads
        with limit_threads(executor.threads):
            return _train_run(cfg, store, artifacts, executor, data, run.id, snap, sha, prof, written0, report,
                              parent_version=parent_version, warm_start_from=warm_start_from,
                              params_override=params_override or {}, tune=tune,
                              idempotency_key=idempotency_key, promote_first=promote_first,
                              resampled_rows=resampled_rows)
    except BaseException as exc:
        # record the failure, but never let a store error hide the original exception
        with contextlib.suppress(Exception):
            store.finish_run(run.id, status="failed", profile=prof.to_dict(), error=str(exc) or type(exc).__name__)
        raise


def _reused(store: Store, rec: Any) -> TrainResult:
    aliases = sorted(a for a, v in store.aliases(rec.model).items() if v == rec.version)
    return TrainResult(
        model=rec.model, version=rec.version, status=rec.status, aliases=aliases, run_id=rec.run_id,
        task=rec.task, primary_metric="", metrics=dict(rec.metrics), artifact_key=rec.artifact_key,
        reference_key=rec.reference_key, cost={"total": rec.cost}, reused=True,
    )


def _train_run(
    cfg: PilotConfig, store: Store, artifacts: ArtifactStore, executor: Executor, data: pd.DataFrame,
    run_id: int, snap: Any, sha: str | None, prof: Profiler, written0: int, report: Progress, *,
    parent_version: int | None, warm_start_from: Pipeline | None, params_override: dict[str, Any],
    tune: bool | None, idempotency_key: str | None, promote_first: bool, resampled_rows: int = 0,
) -> TrainResult:
    name = cfg.model.name
    with prof.stage("validate"):
        report("validate", 0, 1)
        features: FeatureSpec = resolve_features(data, cfg)
        task = features.task
        metric = primary_metric(cfg, task)
        checks = validate(data, cfg, features)
        store.set_tags(run_id, {"validation": to_jsonable(checks.to_dict()), "task": task})
        checks.raise_if_failed()
        labelled = data[data[features.target].notna()]
        report("validate", 1, 1)

    with prof.stage("split"):
        report("split", 0, 1)
        sp = split_frame(labelled, features.target, task, cfg)
        cols = [c["name"] for c in features.signature]
        X, y = labelled[cols], labelled[features.target]
        X_tr, y_tr, X_va, y_va = X.iloc[sp.train], y.iloc[sp.train], X.iloc[sp.validation], y.iloc[sp.validation]
        if task == "classification" and y_tr.nunique() < 2:
            raise DataError(
                f"the training split holds a single class of '{features.target}': use more data, "
                "a larger time range, or split.method: random"
            )
        store.set_tags(run_id, {"split": sp.to_dict()})
        report("split", 1, 1)

    est = estimator_path(cfg.model.estimator, task)
    store.log_params(run_id, {"estimator": est})  # the class used, also when model.estimator is left to the default
    params = {**cfg.model.params, **params_override}
    # fail here, in this process, on an unknown estimator or parameter, not in every trial
    make_estimator(cfg.model.estimator, task, params, cfg.model.seed)
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    space = cfg.tuning.space or default_space(cfg.model.estimator, task)
    space = {k: v for k, v in (space or {}).items() if k not in params_override}
    check_param_names(cfg.model.estimator, task, space, "tuning.space")
    do_tune = (cfg.tuning.enabled if tune is None else tune) and bool(space)
    with prof.stage("tune"):
        if do_tune:
            best, trials = _tune(cfg, store, executor, run_id, report, features, X, y, sp, labelled,
                                 task=task, estimator=cfg.model.estimator, params=params, space=space,
                                 metric=cfg.tuning.metric or metric)
    final_params = {**params, **best}

    with prof.stage("fit"):
        report("fit", 0, 1)
        pipe, warm = fit_final(features, X_tr, y_tr, estimator=cfg.model.estimator, task=task,
                               params=final_params, seed=cfg.model.seed, warm_start_from=warm_start_from)
        report("fit", 1, 1)

    with prof.stage("evaluate"):
        report("evaluate", 0, 1)
        ev = _evaluate(cfg, store, run_id, pipe, features, task, metric, X_tr, y_tr, X_va, y_va, labelled.iloc[sp.validation])
        report("evaluate", 1, 1)

    with prof.stage("package"):
        report("package", 0, 1)
        # profile the rows as they came: upsampled copies would make their segment look drifted live
        copies = data.index[len(data) - resampled_rows :] if resampled_rows > 0 else data.index[:0]
        ref_key = save_reference(artifacts, X_tr[~X_tr.index.isin(copies)], features,
                                 _scores(ev["proba"], ev["pred"], task), ev["pred"] if task == "classification" else None,
                                 X_valid=X_va, y_valid=y_va.to_numpy(), calibration=cfg.monitoring.calibration,
                                 joint=cfg.monitoring.joint_drift, conformal_alpha=cfg.monitoring.conformal_alpha,
                                 classes=np.asarray(pipe.classes_) if task == "classification" else None,
                                 seed=cfg.model.seed)
        art_key = save_bundle(artifacts, pipe)
        # the code-free second format, checked against the pipeline on the validation rows
        onnx_graph = (save_onnx(artifacts, pipe, features.signature, X_va) if cfg.serving.onnx
                      else {"status": "off", "reason": "serving.onnx is false"})
        report("package", 1, 1)

    with prof.stage("register"):
        report("register", 0, 1)
        # the file as stored, re-read: a version is only registered if it passes the model allowlist
        check_model(artifacts, art_key)
        prof.bytes_written += artifacts.bytes_written - written0
        profile = prof.to_dict()
        cost = estimate_cost(profile, cfg.costs)
        gate = threshold_gate(ev["metrics"], ev["train_metrics"], cfg, primary_metric=metric)
        classes = to_jsonable(np.asarray(pipe.classes_)) if task == "classification" else None
        lineage = {"dataset_hashes": [snap.hash], "config_hash": cfg.config_hash(), "git_sha": sha,
                   "parent_version": parent_version, "run_id": run_id, "estimator": est,
                   "onnx": onnx_graph}
        rec = store.register_version(
            name, run_id=run_id, artifact_key=art_key, reference_key=ref_key, signature=features.signature,
            task=task, classes=classes, metrics=ev["metrics"], lineage=lineage, cost=cost["total"],
            status="registered" if gate.passed else "rejected", idempotency_key=idempotency_key,
        )
        _after_gate(store, rec, gate, promote_first, metric, ev["metrics"])
        report("register", 1, 1)

    profile = prof.to_dict()  # again, so the register stage is counted
    store.set_tags(run_id, {"version": rec.version, "overfitting": ev["overfitting"], "gate": gate.to_dict(),
                            "warm_start": warm, "primary_metric": metric,
                            # kept on the run for the dashboard's run page
                            "segments": ev["segments"], "feature_importance": to_jsonable(ev["importance"])})
    store.finish_run(run_id, status="finished", profile={**profile, "cost": cost}, cost=cost["total"])
    aliases = sorted(a for a, v in store.aliases(name).items() if v == rec.version)
    return TrainResult(
        model=name, version=rec.version, status=rec.status, aliases=aliases, run_id=run_id, task=task,
        primary_metric=metric, metrics=ev["metrics"], train_metrics=ev["train_metrics"],
        overfitting=ev["overfitting"], segments=ev["segments"], feature_importance=ev["importance"],
        learning_curve=ev["curve"], trials=trials, best_params=to_jsonable(final_params), gate=gate.to_dict(),
        validation=to_jsonable(checks.to_dict()), dataset=to_jsonable(snap.to_dict()), split=sp.to_dict(),
        profile=profile, cost=cost, artifact_key=rec.artifact_key, reference_key=rec.reference_key,
        warm_start=warm,
    )


def _tune(
    cfg: PilotConfig, store: Store, executor: Executor, run_id: int, report: Progress, features: FeatureSpec,
    X: pd.DataFrame, y: pd.Series, sp: Any, labelled: pd.DataFrame, *, task: str, estimator: str | None,
    params: dict[str, Any], space: dict[str, Any], metric: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the study; log each trial as the metric ``trial/<metric>`` at step = trial number."""
    n_trials = cfg.tuning.n_trials
    train_pos = sp.train
    time_ordered = sp.method == "time" and cfg.model.time_column is not None
    if time_ordered:
        train_pos = _time_sorted(sp.train, labelled[cfg.model.time_column])
    report("tune", 0, n_trials)
    done = 0

    def on_trial(t: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        if t["value"] is not None and np.isfinite(t["value"]):
            store.log_metric(run_id, f"trial/{metric}", float(t["value"]), step=t["number"])
        store.heartbeat(run_id)
        report("tune", done, n_trials)

    storage = tuning.storage_for(cfg.store_url, cfg.tuning.storage)
    if storage is None and not getattr(executor, "shares_files", True):
        raise ConfigError(
            "tuning: the trials run on other nodes, which cannot reach a study in a local file; "
            "use a PostgreSQL store.url (the study goes in its database) or set tuning.storage "
            "to an Optuna RDB URL every node reaches"
        )
    result = tuning.tune(
        {"estimator": estimator, "task": task, "base_params": params,
         "space": {k: v.model_dump() for k, v in space.items()}, "features": features,
         "X": X.iloc[train_pos], "y": y.iloc[train_pos], "metric": metric, "folds": cfg.tuning.folds,
         "pruning": cfg.tuning.pruning, "time_ordered": time_ordered, "seed": cfg.model.seed,
         "timeout": cfg.tuning.timeout},
        executor, n_trials=n_trials, parallel=cfg.tuning.parallel, on_trial=on_trial,
        storage=storage, study_name=f"{cfg.model.name}.run-{run_id}",
    )
    store.log_params(run_id, to_jsonable({
        "best_params": result.best_params, "best_value": result.best_value, "tuning_metric": metric,
        "trials": {str(t["number"]): {"params": t["params"], "state": t["state"]} for t in result.trials},
    }))
    return result.best_params, to_jsonable(result.trials)


def _evaluate(
    cfg: PilotConfig, store: Store, run_id: int, pipe: Pipeline, features: FeatureSpec, task: str, metric: str,
    X_tr: pd.DataFrame, y_tr: pd.Series, X_va: pd.DataFrame, y_va: pd.Series, frame_va: pd.DataFrame,
) -> dict[str, Any]:
    """Validation and training metrics, gap, segments, learning curve, importance; logged to the run."""
    e = cfg.evaluation
    pred, proba = predict_all(pipe, X_va, task)
    classes = np.asarray(pipe.classes_) if task == "classification" else None
    metrics = compute_metrics(task, y_va.to_numpy(), pred, proba, classes)
    train_metrics = evaluate(pipe, X_tr, y_tr, task)
    overfitting = overfit_gap(train_metrics, metrics, metric, e.overfit_max_gap)
    segments = to_jsonable(segment_metrics(y_va, pred, proba, frame_va, features.segments, task, classes, e.segment_min_rows))
    curve = learning_curve(pipe, X_tr, y_tr, X_va, y_va, task, metric) if e.learning_curve else None
    importance = permutation_feature_importance(pipe, X_va, y_va, task, metric, repeats=e.permutation_repeats,
                                                max_rows=e.importance_max_rows, seed=cfg.model.seed)
    points: list[tuple[str, float, int]] = [(f"validation/{k}", v, 0) for k, v in metrics.items()]
    points += [(f"train/{k}", v, 0) for k, v in train_metrics.items()]
    if overfitting["gap"] is not None:
        points.append(("overfit_gap", overfitting["gap"], 0))
    if curve is not None:
        for part in ("train", "validation"):
            points += [(f"learning_curve/{part}", v, s) for s, v in zip(curve["steps"], curve[part], strict=True)
                       if np.isfinite(v)]
    store.log_metrics(run_id, points)
    return {"pred": pred, "proba": proba, "metrics": metrics, "train_metrics": train_metrics,
            "overfitting": overfitting, "segments": segments, "curve": to_jsonable(curve), "importance": importance}


def _after_gate(store: Store, rec: Any, gate: Any, promote_first: bool, metric: str, metrics: dict[str, float]) -> None:
    """Record the gate's verdict; make a passing first version the champion."""
    numbers = {"version": rec.version, **{k: v for k, v in metrics.items()}}
    subject = f"{rec.model}:v{rec.version}"
    if not gate.passed:
        store.add_event("thresholds_failed", model=rec.model, subject=subject, reason="; ".join(gate.reasons), numbers=numbers)
        return
    store.add_event("thresholds_passed", model=rec.model, subject=subject,
                    reason=f"passed {len(gate.checks)} threshold check(s)", numbers=numbers)
    if promote_first and rec.status == "registered" and store.get_alias(rec.model, "champion") is None:
        # compare-and-set: when another run promoted its version first, that decision stands
        with contextlib.suppress(Conflict):
            store.set_alias(rec.model, "champion", rec.version, reason=f"first version to pass the gate ({metric} = {metrics.get(metric, float('nan')):.4g})",
                            numbers=numbers, expected_current=None)
