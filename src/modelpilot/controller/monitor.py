"""The monitor phase of a tick: the live window against the champion's reference profile.

:func:`monitor` reads the window (the last ``monitoring.window_size`` predictions, within
``monitoring.window_time`` when set), summarises it with :func:`summarize`, adds the change
detector's report on the champion's labelled errors (:func:`change_report`) and the
importance-weighted drift share, and stores the report. The summary (small, kept in SQL and
read by the triggers) holds the share of drifted features, the prediction drift, the
labelled metric overall and per segment, and the estimated metric where labels are missing.
The details (per-column statistics) go to the artifact store.

Performance is measured only on predictions the *current* champion served: after a
promotion the old model's errors must not count against the new one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import ArtifactStore, get_json, put_json
from modelpilot.config import PilotConfig, TriggerRule
from modelpilot.controller.data import FEATURE_PREFIX, row_errors
from modelpilot.controller.window import WindowSource
from modelpilot.errors import NotFound
from modelpilot.monitoring import drift_report, estimate_performance, performance
from modelpilot.monitoring.change import get_change_detector
from modelpilot.monitoring.conformal import coverage
from modelpilot.monitoring.errormodel import estimate_error
from modelpilot.policy.trigger_state import RowClock
from modelpilot.policy.triggers import ChangeState
from modelpilot.store import ModelVersionRecord, Store


def rows_needed(cfg: PilotConfig) -> int:
    """The labelled rows the longest wait counted in rows needs (cooldowns, the budget's period)."""
    t = cfg.triggers
    rules = [getattr(t, name) for name, f in type(t).model_fields.items() if f.annotation is TriggerRule]
    waits = [r.cooldown_rows for r in rules if r.cooldown is None and r.cooldown_rows]
    if cfg.budget.period is None and cfg.budget.period_rows:
        waits.append(cfg.budget.period_rows)
    return max(waits, default=0)


def monitor(
    cfg: PilotConfig, store: Store, artifacts: ArtifactStore, window: WindowSource, champion: int, now: datetime,
    known: ChangeState | None,
) -> tuple[dict[str, Any], ModelVersionRecord, dict[str, Any], RowClock]:
    """One monitoring pass for the ``champion`` at ``now``, its report stored.

    ``known``: the change the trigger state has located (the report counts the rows since).

    Returns:
        ``(summary, champion version, its reference profile, row clock)``: the row clock holds
        the times of the latest labelled rows, as many as the waits counted in rows need.
    """
    version = store.get_version(cfg.model.name, champion)
    reference = get_json(artifacts, version.reference_key) if version.reference_key else {"columns": {}}
    since = now - timedelta(seconds=cfg.monitoring.window_time) if cfg.monitoring.window_time else None
    rows = window.window(last_n=cfg.monitoring.window_size, since=since, until=now)
    labelled = window.labelled(last_n=cfg.monitoring.window_size, since=since)
    summary, details = summarize(cfg, rows, labelled, version, reference)
    recent = window.labelled(last_n=max(cfg.triggers.change.max_rows, rows_needed(cfg)))
    summary["change"] = change_report(cfg, recent.iloc[-cfg.triggers.change.max_rows :], version, known)
    summary["weighted_drift_share"] = weighted_drift_share(store, version, summary)
    store.add_monitoring_report(
        cfg.model.name,
        champion,
        window_start=datetime.fromisoformat(summary["window_start"]) if summary["window_start"] else None,
        window_end=datetime.fromisoformat(summary["window_end"]) if summary["window_end"] else None,
        n_predictions=summary["n_predictions"],
        n_labelled=summary["n_labelled"],
        summary=summary,
        details_key=put_json(artifacts, details),
    )
    return summary, version, reference, RowClock.of(recent["ts"] if len(recent) else [])


def change_report(cfg: PilotConfig, rows: pd.DataFrame, version: ModelVersionRecord,
                  known: ChangeState | None) -> dict[str, Any] | None:
    """The change detector on the champion's labelled errors, in label order (``summary.change``).

    ``rows``: the latest ``triggers.change.max_rows`` labelled rows, oldest first.
    """
    c = cfg.triggers.change
    if not len(rows):
        return None
    served = rows[rows["model_version"].to_numpy() == version.version]
    detector = get_change_detector(c.method, alpha=c.alpha, min_rows=c.min_rows)
    # the champion's first labelled rows are its own post-deployment level
    errors = row_errors(served, version.task) if len(served) else np.empty(0)
    report = detector.fit(errors[: c.min_rows]).update(errors[c.min_rows :]).report()
    out: dict[str, Any] = {**report.to_dict(), "version": version.version}
    if report.detected and report.change_at is not None:
        out["since"] = served["ts"].iloc[report.change_at].isoformat()
    if len(served):
        out["champion_since"] = served["ts"].iloc[0].isoformat()
    if known is not None:
        out["rows_since_known"] = int((rows["ts"] >= known.since).sum())
    return out


def _features(window: pd.DataFrame, version: ModelVersionRecord) -> pd.DataFrame:
    names = [f["name"] for f in version.signature]
    return pd.DataFrame({n: window[FEATURE_PREFIX + n].to_numpy() for n in names if FEATURE_PREFIX + n in window})


def _proba(window: pd.DataFrame) -> np.ndarray | None:
    if "probabilities" not in window or window["probabilities"].isna().all():
        return None
    rows = window["probabilities"].dropna()
    if len(rows) != len(window):
        return None
    return np.vstack(rows.to_numpy()).astype(np.float64)


def _classes(version: ModelVersionRecord) -> list[str] | None:
    return [str(c) for c in version.classes] if version.classes is not None else None


def summarize(
    cfg: PilotConfig,
    window: pd.DataFrame,
    labelled: pd.DataFrame,
    version: ModelVersionRecord,
    reference: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Summarise one window; returns ``(summary, details)``.

    Args:
        cfg: the config (``monitoring``, ``model.segments``, the primary metric).
        window: the latest prediction-log rows, oldest first (drift and estimates).
        labelled: the latest rows whose label has arrived, oldest first (measured metric);
            rows served by other versions are ignored.
        version: the champion the window is judged against.
        reference: the champion's reference profile.
    """
    metric = cfg.primary_metric
    served = window[window["model_version"] == version.version] if len(window) else window
    summary: dict[str, Any] = {
        "metric": metric,
        "version": version.version,
        "n_predictions": int(len(window)),
        "n_labelled": 0,
        "drift_share": None,
        "drifted_features": [],
        "prediction_drift": None,
        "performance": None,
        "segment_performance": {},
        "estimated_performance": None,
        "window_start": window["ts"].min().isoformat() if len(window) else None,
        "window_end": window["ts"].max().isoformat() if len(window) else None,
    }
    details: dict[str, Any] = {"summary": summary}
    if len(window) >= cfg.monitoring.min_samples:
        scores = window["score"].to_numpy(np.float64) if "score" in window else None
        preds = window["prediction"].astype(str).to_numpy() if version.task == "classification" else None
        report = drift_report(
            reference,
            _features(window, version),
            method=cfg.monitoring.drift_method,
            threshold=cfg.monitoring.drift_threshold,
            scores=scores,
            predictions=preds,
            joint=cfg.monitoring.joint_drift,
        )
        details["drift"] = report
        summary["drift_share"] = report["share_drifted"]
        summary["drifted_features"] = report["drifted_columns"]
        score_drift = (report.get("prediction_drift") or {}).get("score")
        summary["prediction_drift"] = score_drift["statistic"] if score_drift else None
        summary["feature_drift"] = {n: c["statistic"] for n, c in report["columns"].items()}
        # the joint detectors' verdicts: {"pca_reconstruction": {"statistic", "drifted"}, ...}
        summary["joint_drift"] = {k: {"statistic": v["statistic"], "drifted": v["drifted"]}
                                  for k, v in report["joint"].items()}

    if len(labelled):
        labelled = labelled[(labelled["model_version"] == version.version) & labelled["label"].notna()]
    summary["n_labelled"] = int(len(labelled))
    if len(labelled):
        summary.update(_measured(cfg, labelled, version, metric))
        covered = _coverage(reference["conformal"], labelled, version) if reference.get("conformal") else None
        if covered is not None:
            details["conformal"] = covered
            summary["coverage"] = {k: covered[k] for k in ("coverage", "target", "p_value", "n")}
    if cfg.monitoring.estimate_performance and len(served):
        est = _estimated(served, version, reference)
        if est is not None:
            summary["estimated_performance"] = est.get(f"expected_{metric}")
            details["estimated"] = est
            summary["segment_estimated_performance"] = _estimated_segments(cfg, served, version, reference, metric)
    return summary, details


def _estimated(served: pd.DataFrame, version: ModelVersionRecord, reference: dict[str, Any]) -> dict[str, float] | None:
    """The label-free estimate of the champion's metrics on the rows it served: calibrated
    probabilities for a classifier, the error model for a regressor (None when neither
    applies)."""
    if version.task == "classification":
        proba = _proba(served)
        if proba is None:
            return None
        return estimate_performance(proba, classes=_classes(version), calibration=reference.get("calibration"))
    model = reference.get("error_model")
    if model is None:
        return None
    return estimate_error(model, _features(served, version), pd.to_numeric(served["prediction"]).to_numpy())


def _coverage(conformal: dict[str, Any], labelled: pd.DataFrame, version: ModelVersionRecord) -> dict[str, float] | None:
    """How often the champion's conformal intervals / prediction sets held the label (None
    for a classifier whose rows carry no probabilities)."""
    if version.task == "classification":
        proba = _proba(labelled)
        if proba is None:
            return None
        return coverage(conformal, labelled["label"].astype(str).to_numpy(), proba=proba, classes=_classes(version))
    return coverage(conformal, pd.to_numeric(labelled["label"]).to_numpy(),
                    predictions=pd.to_numeric(labelled["prediction"]).to_numpy())


def _estimated_segments(
    cfg: PilotConfig, served: pd.DataFrame, version: ModelVersionRecord, reference: dict[str, Any], metric: str
) -> dict[str, float]:
    """The estimate per segment value (``"column=value"``), where a segment has enough rows."""
    out: dict[str, float] = {}
    for col in cfg.model.segments:
        if FEATURE_PREFIX + col not in served:
            continue
        values = served[FEATURE_PREFIX + col].astype(str).to_numpy()
        for value in np.unique(values):
            rows = values == value
            if rows.sum() >= cfg.monitoring.min_samples:
                got = (_estimated(served[rows], version, reference) or {}).get(f"expected_{metric}")
                if got is not None:
                    out[f"{col}={value}"] = float(got)
    return out


def _measured(cfg: PilotConfig, labelled: pd.DataFrame, version: ModelVersionRecord, metric: str) -> dict[str, Any]:
    classification = version.task == "classification"
    y_true = labelled["label"].astype(str).to_numpy() if classification else pd.to_numeric(labelled["label"]).to_numpy()
    y_pred = (
        labelled["prediction"].astype(str).to_numpy()
        if classification
        else pd.to_numeric(labelled["prediction"]).to_numpy()
    )
    segs = [s for s in cfg.model.segments if FEATURE_PREFIX + s in labelled]
    seg_frame = (
        pd.DataFrame({s: labelled[FEATURE_PREFIX + s].astype(str).to_numpy() for s in segs}) if segs else None
    )
    result = performance(
        y_true,
        y_pred,
        task=version.task,
        proba=_proba(labelled) if classification else None,
        classes=_classes(version),
        segments=seg_frame,
        min_rows=1,
        segment_metrics=[metric],  # segments are judged on the primary metric only
    )
    segment_perf = {
        f"{col}={value}": {"value": m.get(metric), "n": int(m["n"])}
        for col, values in (result.get("segments") or {}).items()
        for value, m in values.items()
        if m.get(metric) is not None
    }
    return {
        "performance": result["overall"].get(metric),
        "performance_all": {k: v for k, v in result["overall"].items() if k != "n"},
        "segment_performance": segment_perf,
    }


def validation_segments(store: Store, version: ModelVersionRecord, metric: str, min_rows: int = 1) -> dict[str, float]:
    """The version's own validation ``metric`` per segment, keyed ``"col=value"`` as monitoring keys them.

    These are the segment references of the triggers: a segment already degraded when the
    first window is read is then measured against what the model scored there at training
    time, not against its already degraded self. Segments the validation split held fewer
    than ``min_rows`` rows of (the trigger's ``min_samples``: a reference must not rest on
    fewer rows than a reading) are absent; their reference comes from the first labelled
    window with enough rows.
    """
    if version.run_id is None:
        return {}
    try:
        rows = store.get_run(version.run_id).tags.get("segments") or []
    except NotFound:
        return {}
    out: dict[str, float] = {}
    for row in rows:
        value = row.get(metric) if isinstance(row, dict) else None
        if value is not None and np.isfinite(value) and int(row.get("rows", 0)) >= min_rows:
            out[f"{row['segment']}={row['value']}"] = float(value)
    return out


def weighted_drift_share(store: Store, version: ModelVersionRecord, summary: dict[str, Any]) -> float | None:
    """The share of drifted features weighted by the version's permutation importance.

    A drift in features the model does not use cannot hurt it; weighting by importance makes
    drift on those count for nothing. None when drift was not measured or the version's run
    recorded no (positive) importance — the plain share is used then.
    """
    drifted = set(summary.get("drifted_features") or [])
    if summary.get("drift_share") is None or version.run_id is None:
        return None
    importance = store.get_run(version.run_id).tags.get("feature_importance") or []
    weights = {str(r["feature"]): max(float(r.get("importance") or 0.0), 0.0) for r in importance}
    total = sum(weights.values())
    if total <= 0:
        return None
    return float(sum(w for f, w in weights.items() if f in drifted) / total)
