"""The data behind each page: plain functions from the store to a template context.

Handlers in :mod:`.router` only pick the template and add the login state; everything a
page shows is computed here, on the server, so the pages stay plain HTML plus figures.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.errors import ModelNotFound
from modelpilot.ui import charts, queries

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore
    from modelpilot.config import PilotConfig
    from modelpilot.store import Store

BACKTEST_PREFIX = "backtests/"
KNOWN_KINDS = (
    "trigger_fired", "trigger_suppressed", "drift_watch", "retrain_waiting", "retrain_started", "retrain_finished",
    "retrain_failed", "retrain_blocked", "tick_failed", "gate_passed", "gate_rejected", "promoted", "rolled_back", "alias_moved", "approval_requested",
    "approval_decided", "thresholds_passed", "thresholds_failed", "version_registered", "version_status",
)


def _require_model(store: Store, name: str) -> None:
    if name not in store.list_models():
        raise ModelNotFound(f"no model named {name!r}: the overview at /ui lists the models")


def overview(cfg: PilotConfig, store: Store) -> dict[str, Any]:
    models = []
    for name in store.list_models():
        champion = store.get_alias(name, "champion")
        version = store.get_version(name, champion) if champion is not None else None
        models.append({
            "name": name, "champion": champion, "metrics": version.metrics if version else {},
            "versions": len(store.list_versions(name)), "health": queries.health(cfg, store, name),
            "rollout": queries.rollout_state(store, name, cfg), "pending": len(store.pending_approvals(name)),
        })
    return {"models": models, "events": store.events(limit=20), "metric": cfg.primary_metric}


def model(cfg: PilotConfig, store: Store, name: str) -> dict[str, Any]:
    _require_model(store, name)
    versions = store.list_versions(name)
    aliases = store.aliases(name)
    by_version: dict[int, list[str]] = {}
    for alias, v in aliases.items():
        by_version.setdefault(v, []).append(alias)
    pending = {a.version for a in store.pending_approvals(name)}
    metric_names = sorted({k for v in versions for k in v.metrics})
    metric = cfg.primary_metric if any(cfg.primary_metric in v.metrics for v in versions) else (metric_names or [""])[0]
    rollout = queries.rollout_state(store, name, cfg)
    champion = aliases.get("champion")
    traffic = (rollout or {}).get("traffic") or ({f"v{champion}": 1.0} if champion is not None else {})
    awaiting = {v.version for v in versions if v.status == "awaiting_approval"} | pending
    return {
        # what the gate measured on the same holdout rows, shown where the decision is made
        "reviews": {v: gate_comparison(store, name, v) for v in awaiting},
        "name": name, "versions": list(reversed(versions)), "aliases": aliases, "by_version": by_version,
        "awaiting": awaiting,
        "metric_names": metric_names, "metric": metric, "rollout": rollout, "traffic": traffic,
        "alias_history": store.alias_history(name, "champion")[:20], "health": queries.health(cfg, store, name),
        "chart": charts.version_metrics(versions, metric) if versions and metric else None,
        "events": store.events(model=name, limit=30),
    }


def gate_comparison(store: Store, name: str, version: int) -> dict[str, Any] | None:
    """The gate's same-holdout comparison of a parked candidate with the champion it was
    measured against (kept by ``rollout.review.request_review``), or None."""
    parked = store.get_state("review", f"{name}/v{version}")
    numbers = (parked or {}).get("numbers") or {}
    if numbers.get("champion") is None or numbers.get("challenger") is None:
        return None
    alpha = numbers.get("alpha")
    return {**numbers, "interval_level": None if alpha is None else round(100 * (1 - 2 * float(alpha))),
            "reason": (parked or {}).get("reason")}


def run(store: Store, run_id: int) -> dict[str, Any]:
    r = store.get_run(run_id)
    latest = store.latest_metrics(run_id)
    metrics = {k: v for k, v in latest.items() if not k.startswith(("trial/", "learning_curve/"))}
    names = sorted({k.split("/", 1)[1] for k in metrics if k.startswith(("train/", "validation/"))})
    table = [{"name": n, "train": metrics.get(f"train/{n}"), "validation": metrics.get(f"validation/{n}")} for n in names]
    other = {k: v for k, v in metrics.items() if not k.startswith(("train/", "validation/"))}
    params = {k: v for k, v in r.params.items() if k != "trials"}
    if params.get("estimator") is None and "estimator" in params:  # runs recorded before the class was
        params["estimator"] = "the task's default (model.estimator not set)"
    tuning_metric = r.params.get("tuning_metric") or r.tags.get("primary_metric") or "accuracy"
    trial_points = store.metric_history(run_id, f"trial/{tuning_metric}")
    curve_train = store.metric_history(run_id, "learning_curve/train")
    curve_val = store.metric_history(run_id, "learning_curve/validation")
    profile = r.profile or {}
    figures = {
        "curve": charts.learning_curve(curve_train, curve_val, r.tags.get("primary_metric") or tuning_metric)
        if curve_train or curve_val else None,
        "trials": charts.trials(trial_points, r.params.get("trials") or {}, tuning_metric) if trial_points else None,
        "importance": charts.importance(r.tags["feature_importance"]) if r.tags.get("feature_importance") else None,
        "profile": charts.profile_stages(profile["stages"]) if profile.get("stages") else None,
    }
    datasets: list[Any] = []
    for h in r.dataset_hashes:
        try:
            datasets.append(store.get_dataset(h))
        except Exception:  # a dataset row may be missing in stores written by old versions
            datasets.append({"hash": h})
    segments = r.tags.get("segments") or []
    seg_metrics = sorted({k for s in segments for k in s if k not in ("segment", "value", "rows", "n")})
    return {
        "run": r, "params": params, "table": table, "other": other, "figures": figures,
        "validation": (r.tags.get("validation") or {}).get("checks") or [], "segments": segments,
        "seg_metrics": seg_metrics, "profile": profile, "cost": profile.get("cost") or {}, "datasets": datasets,
        "version": r.tags.get("version"), "gate": r.tags.get("gate") or {}, "overfitting": r.tags.get("overfitting"),
        "trial_count": len(r.params.get("trials") or {}),
    }


def monitoring(cfg: PilotConfig, store: Store, artifacts: ArtifactStore, name: str, range_: str) -> dict[str, Any]:
    _require_model(store, name)
    since = None
    if range_ in queries.RANGES:
        newest = store.monitoring_reports(name, limit=1)
        if newest:
            since = newest[0].created_at - queries.RANGES[range_]
    series = queries.monitoring_series(store, name, since)
    ctx: dict[str, Any] = {"name": name, "series": series, "range": range_, "ranges": ["all", *queries.RANGES],
                           "figures": {}, "health": queries.health(cfg, store, name), "metric": cfg.primary_metric,
                           "bucket_label": _duration(series.bucket_seconds), "has_labels": False, "events": []}
    if series.n_reports == 0:
        return ctx
    frame = series.frame
    start = frame.index[0].to_pydatetime()
    events = store.events(model=name, kind=list(queries.MARKED_KINDS), since=start, limit=300)
    ctx["events"] = events
    metric = series.latest.get("metric") or cfg.primary_metric
    ctx["metric"] = metric
    figs = ctx["figures"]
    if series.features:
        figs["heatmap"] = charts.drift_heatmap(frame, series.features, cfg.monitoring.drift_threshold)
    if frame["drift_share"].notna().any() or frame["prediction_drift"].notna().any():
        figs["drift"] = charts.drift_lines(frame, events, cfg.triggers.feature_drift.threshold)
    dist = queries.prediction_distribution(artifacts, name, since, series.bucket_seconds)
    if not dist.empty:
        figs["predictions"] = charts.prediction_distribution(dist, events)
    ctx["has_labels"] = bool(frame["performance"].notna().any())
    if ctx["has_labels"] or frame["estimated_performance"].notna().any():
        reference = ctx["health"].get("reference")
        figs["performance"] = charts.performance_lines(frame, events, metric, reference,
                                                       cfg.triggers.performance_drop.threshold)
    if series.segments and ctx["has_labels"]:
        figs["segments"] = charts.segment_lines(frame, series.segments, events, metric)
    return ctx


def events(store: Store, *, model: str | None, kind: str | None, since: datetime | None, until: datetime | None,
           limit: int) -> dict[str, Any]:
    rows = store.events(model=model or None, kind=kind or None, since=since, until=until, limit=limit)
    kinds = sorted(set(store.event_kinds()) | set(KNOWN_KINDS))  # the filter's choices
    return {"events": rows, "kinds": kinds, "model": model or "", "kind": kind or "", "limit": limit,
            "since": since.isoformat() if since else "", "until": until.isoformat() if until else "",
            "older": rows[-1].time.isoformat() if len(rows) == limit else None}


def cost(cfg: PilotConfig, store: Store, name: str) -> dict[str, Any]:
    """Every training run's cost and outcome; cost, value and ROI per retrain, period and in total.

    The numbers are :func:`modelpilot.controller.counterfactual.roi_report`'s, the same the
    backtest and ``modelpilot status --json`` show.
    """
    from modelpilot.controller.counterfactual import roi_report

    _require_model(store, name)
    metric = cfg.primary_metric
    report = roi_report(cfg, store, name)
    by_run = {r["run"]: r for r in report["retrains"]}
    rows: list[dict[str, Any]] = []
    for r in sorted(store.list_runs(model=name, limit=10_000), key=lambda r: r.created_at):
        if r.kind not in ("train", "retrain"):
            continue
        version = r.tags.get("version")
        measured = by_run.get(r.id)
        outcome = measured["outcome"] if measured else ("failed" if r.status == "failed" else "initial")
        rows.append({"run": r.id, "time": r.created_at.isoformat(), "kind": r.kind, "version": version,
                     "status": r.status, "cost": float(r.cost or 0.0), "outcome": outcome,
                     "value": measured["value"] if measured else None,
                     "label": f"run {r.id}" + (f" → v{version}" if version is not None else "")})
    return {
        "name": name, "rows": rows, "report": report, "retrains": report["retrains"], "metric": metric,
        "currency": cfg.costs.currency, "total": sum(row["cost"] for row in rows),
        "chart": charts.cost_over_time(rows, cfg.costs.currency) if rows else None,
        "promotions": sum(1 for row in report["retrains"] if row["outcome"] == "promoted"),
        "waiting": sum(1 for row in report["retrains"] if row["outcome"] == "waiting"),
    }


def backtests(cfg: PilotConfig, artifacts: ArtifactStore) -> dict[str, Any]:
    stored = [k for k in artifacts.list(BACKTEST_PREFIX) if k.endswith(".html")]
    folder = cfg.resolve_path("backtests")
    files = sorted(p.name for p in folder.glob("*.html")) if folder.is_dir() else []
    reports = [{"name": k[len(BACKTEST_PREFIX):], "href": f"backtests/artifact/{k[len(BACKTEST_PREFIX):]}",
                "where": "artifact store"} for k in stored]
    reports += [{"name": f, "href": f"backtests/file/{f}", "where": str(folder)} for f in files]
    return {"reports": reports, "folder": str(folder)}


def backtest_file(cfg: PilotConfig, name: str) -> Path | None:
    """The report ``name`` in ``<base_dir>/backtests/``; None for anything else (no traversal)."""
    if Path(name).name != name or not name.endswith(".html"):
        return None
    path = cfg.resolve_path("backtests") / name
    return path if path.is_file() else None


def _duration(seconds: int | None) -> str | None:
    """``86400`` → ``"1 d"``; None stays None."""
    if not seconds:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def runs(store: Store, *, model: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """The newest runs (any kind), for the run list and the compare form."""
    from modelpilot.tracking import run_summary

    rows = [run_summary(store, r) for r in store.list_runs(model=model or None, kind=kind or None, limit=200)]
    for r in rows:
        r["shown"] = {k: v for k, v in r["metrics"].items() if not k.startswith(("trial/", "learning_curve/"))}
    return {"runs": rows, "model": model or "", "kind": kind or ""}


def run_compare(store: Store, a: str, b: str) -> dict[str, Any]:
    """Two runs side by side: parameters, last metric values and every metric's history, plotted.

    ``a`` and ``b`` are run ids or names (as on the command line).
    """
    from modelpilot.tracking import compare_runs, find_run

    result = compare_runs(store, find_run(store, a), find_run(store, b), history=True)
    ra, rb = result["runs"]
    labels = (f"A: run {ra['id']} {ra['name']}", f"B: run {rb['id']} {rb['name']}")
    figures = {"history": charts.run_histories(result["history"], labels) or None,
               "last": charts.run_last_values(result["metrics"], labels)
               if any(m["a"] is not None and m["b"] is not None for m in result["metrics"]) else None}
    return {**result, "labels": labels, "figures": figures,
            "differ": sum(not p["same"] for p in result["params"])}
