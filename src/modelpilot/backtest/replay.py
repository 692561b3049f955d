"""One policy's replay: the real loop on a simulated clock, in its own store.

Prequential, batch by batch: the policy's current champion predicts the batch (its metric
is recorded), the predictions go to an in-memory prediction log
(:class:`~modelpilot.controller.window.FrameWindow`), the labels of the batch ``label_delay``
batches back are revealed, and the real :class:`~modelpilot.controller.Controller` ticks at
the batch's last timestamp: monitoring, triggers, data selection, training, gate and
rollout are the production code. The champion pipeline is loaded from the artifact store
once per promotion, never per batch. After a promotion the replay plays the server's part of
the ROI measurement too: the retired champion scores its ``costs.counterfactual`` sample of
each batch (role ``retired``), so cost, value and ROI come from the same code and records as
on the dashboard (:func:`modelpilot.controller.counterfactual.roi_report`).

:func:`replay_policy` is a module-level function over plain data, so the executor can run
the policies in parallel worker processes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import open_artifacts
from modelpilot.artifacts.models import load_model_shared
from modelpilot.backtest.policies import PolicySpec, policy_config
from modelpilot.config import PilotConfig
from modelpilot.controller import Controller
from modelpilot.controller.counterfactual import roi_report
from modelpilot.controller.data import FEATURE_PREFIX
from modelpilot.controller.window import FrameWindow
from modelpilot.errors import DataError
from modelpilot.executors import LocalExecutor, limit_threads
from modelpilot.rollout.retired import ROLE
from modelpilot.rollout.router import retired_mask
from modelpilot.store import Store
from modelpilot.training import train
from modelpilot.training.evaluate import compute_metrics

AFTER_RETRAIN = 5  # batches averaged after each retrain ("mean_after_retrain")


def backtest_profile(cfg: PilotConfig, workdir: Path) -> PilotConfig:
    """The config a replay runs under: the user's, minus per-version extras and servers.

    A backtest trains many versions that nobody will inspect one by one, so the costly
    per-version extras are switched off: hyperparameter search (``tuning.enabled``,
    ``retraining.tune``), the ONNX graph (``serving.onnx``), the learning curve, and permutation importance is cut to one
    repeat on 100 rows. The store and artifacts live in ``workdir``; the training source
    is the ``--initial`` rows written there (it is also the controller's history).
    """
    raw = cfg.model_dump(mode="json", by_alias=True, exclude={"base_dir"})
    raw["store"] = {"url": f"sqlite:///{workdir / 'store.db'}"}
    raw["artifacts"] = {"url": str(workdir / "artifacts"), "options": {}}
    raw["data"] = {**raw["data"], "source": str(workdir / "initial.parquet"), "query": None}
    raw["tuning"] = {**raw["tuning"], "enabled": False}
    raw["retraining"] = {**raw["retraining"], "tune": False}
    raw["evaluation"] = {**raw["evaluation"], "learning_curve": False, "permutation_repeats": 1,
                         "importance_max_rows": 100}
    raw["executor"] = {"kind": "local", "workers": 1}  # never started: tuning is off
    raw["serving"] = {**raw["serving"], "onnx": False}  # replayed versions are never served
    return PilotConfig.from_dict(raw, base_dir=workdir, source="backtest config")


def _log_rows(X: pd.DataFrame, ids: np.ndarray, ts: pd.Series, version: int, pred: np.ndarray,
              proba: np.ndarray | None, task: str, role: str = "primary") -> pd.DataFrame:
    """Prediction-log rows as the server writes them (label null until revealed)."""
    log = pd.DataFrame({FEATURE_PREFIX + c: X[c].to_numpy() for c in X.columns})
    log.insert(0, "request_id", ids)
    log.insert(1, "ts", ts.array)  # tz-aware as it is: to_numpy would make Timestamp objects
    log["model_version"] = version
    log["role"] = role
    if task == "classification":
        log["prediction"] = pred.astype(str)
        if proba is not None:
            log["score"] = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
            log["probabilities"] = list(proba)
        else:
            log["score"] = np.nan
            log["probabilities"] = None
    else:
        log["prediction"] = pred.astype(np.float64)
        log["score"] = pred.astype(np.float64)
        log["probabilities"] = None
    log["label"] = pd.Series([None] * len(log), dtype=object)
    return log


def replay_policy(cfg: PilotConfig, spec: PolicySpec, frame: pd.DataFrame, opts: dict[str, Any]) -> dict[str, Any]:
    """Replay ``frame`` under ``spec``; returns the policy's part of the backtest result.

    Args:
        cfg: the config (``model.time_column`` names a sorted, tz-aware UTC column of ``frame``).
        spec: the policy.
        frame: the whole history in time order, every target present.
        opts: ``{"batch", "initial", "label_delay"}`` (rows, rows, batches), and optionally
            ``"workdir"``: a folder that keeps the policy's store and artifacts afterwards.

    Returns:
        ``{"name", "kind", "metric_by_batch", "retrain_batches", "retrain_reasons",
        "retrain_promoted", "train_cpu_seconds", "cost", "initial", "wall_seconds",
        "batch_seconds", ...}``; ``batch_seconds`` is the wall time of each batch (predict,
        log, tick and any retrain in it).

    Raises:
        DataError: the first model cannot be trained on the initial rows.
    """
    # policies replay in parallel processes: one BLAS/OpenMP thread each avoids oversubscribing
    # the cores (and per-tree OpenMP start-up dominates predicting 1,000-row batches anyway)
    with limit_threads(1):  # also the ceiling of the trainings inside the replay
        return _replay(cfg, spec, frame, opts)


def _replay(cfg: PilotConfig, spec: PolicySpec, frame: pd.DataFrame, opts: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    batch, n_initial, delay = int(opts["batch"]), int(opts["initial"]), int(opts["label_delay"])
    target, time_col = cfg.model.target, cfg.model.time_column
    if time_col is None:
        raise DataError("a replay needs model.time_column: run it through run_backtest, which sets one")
    stream = frame.iloc[n_initial:].reset_index(drop=True)
    n_batches = len(stream) // batch
    keep = opts.get("workdir")  # a folder to keep the policy's store in (inspection, tests)
    with tempfile.TemporaryDirectory(prefix="modelpilot-backtest-") as tmp:
        work = Path(keep) if keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        frame.iloc[:n_initial].to_parquet(work / "initial.parquet", index=False)
        pcfg = backtest_profile(policy_config(cfg, spec), work)
        metric = pcfg.primary_metric
        store = Store.open(pcfg.store_url)
        artifacts = open_artifacts(pcfg.artifacts_url)
        executor = LocalExecutor(workers=1)
        try:
            first = train(pcfg, store, artifacts, executor, kind="backtest", tune=False, promote_first=True)
            champion = store.get_alias(pcfg.model.name, "champion")
            if champion is None:
                raise DataError(
                    f"the first model, trained on the {n_initial} --initial rows, failed the gate "
                    f"({'; '.join(first.gate.get('reasons', []))}): raise --initial or relax gates.min_metrics"
                )
            version = store.get_version(pcfg.model.name, champion)
            model = load_model_shared(artifacts, version.artifact_key)
            names = [f["name"] for f in version.signature]
            classes = np.asarray(version.classes) if version.classes is not None else None
            window = FrameWindow()
            cf = pcfg.costs.counterfactual
            retired: dict[str, Any] | None = None
            ctl = Controller(pcfg, store, artifacts, executor, window=window, inline=True)
            ids = np.arange(len(stream)).astype(str)
            labels = stream[target].astype(str)  # feedback labels travel as strings
            out: dict[str, Any] = {
                "name": spec.name, "kind": spec.kind, "metric_by_batch": [], "retrain_batches": [],
                "retrain_reasons": [], "retrain_promoted": [], "retrain_versions": [], "train_cpu_seconds": 0.0,
                "batch_seconds": [], "cost": 0.0, "initial": {"version": champion, "cpu_seconds": first.profile.get("cpu_s"),
                                         "cost": first.cost.get("total"), "metrics": first.metrics},
            }
            for b in range(n_batches):
                batch_started = time.perf_counter()
                lo, hi = b * batch, (b + 1) * batch
                rows = stream.iloc[lo:hi]
                X = rows[names]
                pred = np.asarray(model.predict(X))
                proba = np.asarray(model.predict_proba(X)) if classes is not None and hasattr(model, "predict_proba") else None
                value = compute_metrics(version.task, rows[target].to_numpy(), pred, proba, classes, only=[metric]).get(metric)
                out["metric_by_batch"].append(None if value is None else float(value))
                if spec.kind == "never":  # nothing will ever read its log: no controller ticks
                    out["batch_seconds"].append(round(time.perf_counter() - batch_started, 4))
                    continue
                window.append(_log_rows(X, ids[lo:hi], rows[time_col], champion, pred, proba, version.task))
                if retired is not None and rows[time_col].iloc[0] < retired["until"]:
                    # the server's part after a promotion: the retired champion scores its sample
                    mask = retired_mask(ids[lo:hi], champion, cf.fraction)
                    if mask.any():
                        Xr = X[mask]
                        old = retired["model"]
                        old_pred = np.asarray(old.predict(Xr))
                        old_proba = (np.asarray(old.predict_proba(Xr)) if classes is not None
                                     and hasattr(old, "predict_proba") else None)
                        window.append(_log_rows(Xr, ids[lo:hi][mask], rows[time_col][mask], retired["version"],
                                                old_pred, old_proba, version.task, role=ROLE))
                reveal = b - delay
                if reveal >= 0:
                    sl = slice(reveal * batch, (reveal + 1) * batch)
                    window.set_labels(pd.Series(ids[sl]), labels.iloc[sl].reset_index(drop=True))
                now = rows[time_col].iloc[-1] + pd.Timedelta(microseconds=1)
                tick = ctl.tick(now.to_pydatetime(), force_retrain_reason=spec.forced(b))
                if tick.retrain is not None:
                    _record_retrain(out, store, pcfg.model.name, tick.retrain["version"], b, tick.promoted is not None)
                if tick.promoted is not None:
                    retired = {"model": model, "version": champion,
                               "until": now + pd.Timedelta(seconds=cf.period)}
                    champion = tick.promoted
                    version = store.get_version(pcfg.model.name, champion)
                    model = load_model_shared(artifacts, version.artifact_key)
                out["batch_seconds"].append(round(time.perf_counter() - batch_started, 4))
            # cost, value and ROI as the dashboard's Cost page reads them from this store
            out["roi"] = roi_report(pcfg, store, pcfg.model.name)
        finally:
            executor.shutdown()
            store.close()
    out["wall_seconds"] = round(time.perf_counter() - started, 3)
    return out


def _record_retrain(out: dict[str, Any], store: Store, model: str, version: int, batch: int, promoted: bool) -> None:
    """Add one retrain (its batch, reason, CPU seconds and cost from its run) to ``out``."""
    rec = store.get_version(model, version)
    run = store.get_run(rec.run_id) if rec.run_id is not None else None
    started = store.events(model=model, kind="retrain_started", limit=1)
    out["retrain_batches"].append(batch)
    out["retrain_reasons"].append(started[0].reason if started else "")
    out["retrain_promoted"].append(promoted)
    out["retrain_versions"].append(version)
    out["train_cpu_seconds"] += float((run.profile or {}).get("cpu_s", 0.0)) if run else 0.0
    out["cost"] += float(run.cost or 0.0) if run and run.cost is not None else float(rec.cost or 0.0)
