"""The gate phase of a tick: thresholds, then the champion on the same holdout, then the labels.

:func:`judge` is the phase: :func:`gate_candidate` decides on the holdout the retrain stored,
:func:`check_labels` turns a pass into a rejection when the labels look forged, and the
verdict is recorded (``gate_passed``, or ``gate_rejected`` with the version marked rejected).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import ArtifactStore, load_model_shared
from modelpilot.config import PilotConfig
from modelpilot.controller.jobs import read_frame
from modelpilot.policy.compare import compare_to_champion
from modelpilot.policy.gates import threshold_gate
from modelpilot.policy.guards import label_flip_guard
from modelpilot.store import ModelVersionRecord, Store


def _scores(model: Any, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    pred = np.asarray(model.predict(X))
    proba = np.asarray(model.predict_proba(X)) if task == "classification" and hasattr(model, "predict_proba") else None
    return pred, proba


def judge(cfg: PilotConfig, store: Store, artifacts: ArtifactStore, window: Any, candidate: ModelVersionRecord,
          champion: int | None, job: dict[str, Any]) -> dict[str, Any]:
    """Gate the retrain ``job``'s ``candidate`` against ``champion`` and record the verdict.

    Returns:
        The verdict of :func:`gate_candidate` (after :func:`check_labels`).
    """
    holdout = read_frame(artifacts, job["holdout_key"])
    info = job.get("info", {})
    verdict = gate_candidate(cfg, store, artifacts, candidate, champion, holdout,
                             after_change=bool(info.get("non_inferiority")), refresh=bool(info.get("refresh")))
    verdict = check_labels(cfg, store, window, champion, candidate.version, verdict)
    model, subject, reasons = cfg.model.name, f"v{candidate.version}", "; ".join(verdict["reasons"])
    if not verdict["passed"]:
        store.set_version_status(model, candidate.version, "rejected", actor="controller", reason=reasons)
        store.add_event("gate_rejected", model=model, subject=subject, actor="controller",
                        reason=reasons + f"; v{champion} keeps serving", numbers=verdict["numbers"])
    else:
        store.add_event("gate_passed", model=model, subject=subject, actor="controller", reason=reasons,
                        numbers=verdict["numbers"])
    return verdict


def gate_candidate(
    cfg: PilotConfig,
    store: Store,
    artifacts: ArtifactStore,
    candidate: ModelVersionRecord,
    champion: int | None,
    holdout: pd.DataFrame,
    *,
    after_change: bool = False,
    refresh: bool = False,
) -> dict[str, Any]:
    """Decide whether ``candidate`` may replace ``champion``.

    The threshold gate is re-checked from the candidate's logged metrics (so a resumed
    controller decides exactly as the first one would); the comparison scores both models
    on ``holdout`` — recent labelled traffic neither was trained on. ``after_change``: the
    holdout is post-change traffic and the champion is stale, so the challenger needs to be
    not worse (``gates.non_inferiority_margin``) rather than better.

    Returns:
        ``{"passed", "reasons", "checks", "numbers", "segments"}``; ``numbers`` holds the
        champion's and challenger's holdout metric, the improvement, its interval and p-value.
    """
    run_metrics = store.latest_metrics(candidate.run_id) if candidate.run_id is not None else {}
    train_metrics = {k.removeprefix("train/"): v for k, v in run_metrics.items() if k.startswith("train/")}
    thresholds = threshold_gate(candidate.metrics, train_metrics, cfg)
    names = [f["name"] for f in candidate.signature]
    X, y = holdout[names], holdout[cfg.model.target].to_numpy()
    challenger_model = load_model_shared(artifacts, candidate.artifact_key)  # predicts only
    pred_new, proba_new = _scores(challenger_model, X, candidate.task)
    if champion is None:  # nothing to beat: the thresholds decide
        return {
            "passed": thresholds.passed, "reasons": thresholds.reasons or ["no champion to compare with"],
            "checks": thresholds.checks, "numbers": {"challenger": candidate.metrics.get(cfg.primary_metric)},
            "segments": {},
        }
    champ = store.get_version(cfg.model.name, champion)
    pred_old, proba_old = _scores(load_model_shared(artifacts, champ.artifact_key), X, champ.task)
    segments = {s: holdout[s].astype(str).to_numpy() for s in cfg.model.segments if s in holdout}
    cmp = compare_to_champion(
        y, pred_old, pred_new, task=candidate.task, metric=cfg.primary_metric, cfg=cfg.gates,
        proba_champion=proba_old, proba_challenger=proba_new, segments=segments,
        classes=candidate.classes, seed=cfg.model.seed,
        non_inferiority_margin=cfg.gates.non_inferiority_margin if after_change else None, refresh=refresh,
    )
    numbers = {
        "metric": cfg.primary_metric, "champion": cmp.champion_metric, "challenger": cmp.challenger_metric,
        "delta": cmp.delta, "ci_low": cmp.ci_low, "ci_high": cmp.ci_high, "p_value": cmp.p_value,
        "test": cmp.test, "holdout_rows": cmp.n, "champion_version": champion, "challenger_version": candidate.version,
        # per segment, on the same holdout rows: what the approval screen shows beside Approve
        "segments": [{"segment": c["name"].removeprefix("segment:"), "passed": c["passed"], "shortfall": c["value"],
                      "allowed": c["threshold"], "detail": c["detail"]}
                     for c in cmp.checks if c["name"].startswith("segment:")],
        "alpha": cfg.gates.alpha,
        "margin": cmp.details.get("margin", cfg.gates.min_improvement), "after_change": after_change,
        # the champion learned the concept before a located change: the references restart
        # from this candidate's score when it is promoted (controller/rollout.py)
        "champion_stale": after_change and not refresh,
    }
    passed = thresholds.passed and cmp.passed
    reasons = [*thresholds.reasons, *([cmp.summary] if cmp.passed and passed else cmp.reasons)]
    return {
        "passed": passed, "reasons": reasons or [cmp.summary], "checks": [*thresholds.checks, *cmp.checks],
        "numbers": numbers, "segments": _segment_values(cmp.details),
    }


def check_labels(cfg: PilotConfig, store: Store, window: Any, champion: int | None, version: int,
                 verdict: dict[str, Any]) -> dict[str, Any]:
    """The verdict, turned into a rejection when the labels look forged (``label_anomaly``).

    Judges the labelled rows the champion served (the window's newest, in time order) with
    :func:`~modelpilot.policy.guards.label_flip_guard`: the served prediction, the label,
    the champion's confidence in its prediction and its validation accuracy.
    """
    if not verdict["passed"] or champion is None or not cfg.gates.label_guard:
        return verdict
    champ = store.get_version(cfg.model.name, champion)
    if champ.task != "classification" or len(champ.classes or []) != 2:
        return verdict
    rows = window.labelled(last_n=cfg.retraining.recent_rows * 4)
    if not len(rows):
        return verdict
    rows = rows[rows["model_version"].to_numpy() == champion].sort_values("ts", kind="stable")
    score = pd.to_numeric(rows["score"], errors="coerce").to_numpy(np.float64)
    guard = label_flip_guard(
        rows["prediction"].to_numpy(), rows["label"].to_numpy(), confidence=np.maximum(score, 1.0 - score),
        validation_accuracy=champ.metrics.get("accuracy"),
    )
    if not guard.suspicious:
        return verdict
    store.add_event("label_anomaly", model=cfg.model.name, subject=f"v{version}", actor="controller",
                    reason=f"{guard.reason}; v{version} is not promoted", numbers=guard.numbers)
    return {**verdict, "passed": False, "reasons": [guard.reason, *verdict["reasons"]],
            "numbers": {**verdict["numbers"], "label_guard": guard.numbers}}


def _segment_values(details: dict[str, Any]) -> dict[str, float]:
    """The challenger's holdout metric per segment ("col=value"), for the trigger references."""
    out: dict[str, float] = {}
    for name, seg in (details.get("segments") or {}).items():
        value = seg.get("challenger") if isinstance(seg, dict) else None
        if value is not None:
            out[name] = float(value)
    return out
