"""Measure each promotion against the model it retired, and read cost, value and ROI back.

:func:`measure` runs on every controller tick: for each open record of
:mod:`modelpilot.rollout.retired` it pairs the rows the retired champion scored in shadow
with the new champion's answers to the same requests, once their labels have arrived, and
stores the realised difference (:func:`modelpilot.policy.roi.realised_difference`) and the
number of predictions the new champion has served. A record is frozen when its champion is
replaced.

:func:`roi_report` is the one reader of cost, value and ROI: the dashboard's Cost page, the
backtest and ``modelpilot status --json`` all call it, so they cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelpilot.config import PilotConfig
from modelpilot.controller.window import WindowSource
from modelpilot.errors import ModelNotFound
from modelpilot.policy.roi import realised_difference, summarize
from modelpilot.rollout import retired as rr
from modelpilot.store import Store


def measure(store: Store, window: WindowSource, model: str, champion: int | None, task: str,
            now: datetime) -> list[dict[str, Any]]:
    """Update every open record of ``model``; returns the records measured this tick."""
    done = []
    for rec in rr.records(store, model):
        if rec.get("frozen_at"):
            continue
        new, old = int(rec["champion"]), int(rec["retired"])
        tenure = datetime.fromisoformat(rec["since"])  # the promotion: nothing before it is this tenure's
        rows = window.paired(champion=new, retired=old, since=tenure)
        diff = realised_difference(rows["label"].to_numpy(), rows["new"].to_numpy(), rows["old"].to_numpy(),
                                   task=task)
        updated = {**rec, "measure": diff, "served": window.served(new, since=tenure), "measured_at": now.isoformat()}
        if champion != new:
            updated["frozen_at"] = now.isoformat()  # replaced: its tenure is over
        store.put_state(rr.NAMESPACE, rr.key(model, new), updated)
        done.append(updated)
    return done


def retrain_rows(store: Store, model: str) -> list[dict[str, Any]]:
    """One row per retrain run: time, cost, outcome, version and, when promoted, its measurement.

    Outcomes: ``promoted``, ``rejected`` (failed a gate, rolled back or refused),
    ``waiting`` (parked for approval), ``in_rollout`` (a progressive rollout is deciding),
    ``failed`` (the run crashed).
    """
    from modelpilot.rollout.state import active

    promoted = {e.subject: e for e in store.events(model=model, kind="promoted", limit=10_000)}
    rollout = active(store, model)
    measured = {int(r["champion"]): r for r in rr.records(store, model)}
    rows = []
    for run in sorted(store.list_runs(model=model, limit=10_000), key=lambda r: r.created_at):
        if run.kind != "retrain":
            continue
        version = run.tags.get("version")
        status = None
        if version is not None:
            try:
                status = store.get_version(model, int(version)).status
            except ModelNotFound:
                status = None
        if run.status == "failed":
            outcome = "failed"
        elif f"v{version}" in promoted:
            outcome = "promoted"
        elif status == "awaiting_approval":
            outcome = "waiting"
        elif version is not None and rollout is not None and rollout.candidate == int(version):
            outcome = "in_rollout"
        else:
            outcome = "rejected"
        rec = measured.get(int(version)) if version is not None and outcome == "promoted" else None
        rows.append({"run": run.id, "time": run.created_at, "version": version, "status": status,
                     "cost": float(run.cost or 0.0), "outcome": outcome,
                     "difference": rec.get("measure") if rec else None,
                     "served": int(rec.get("served") or 0) if rec else 0,
                     "retired": rec.get("retired") if rec else None})
    return rows


def roi_report(cfg: PilotConfig, store: Store, model: str) -> dict[str, Any]:
    """Cost, value and ROI per retrain, per period (``budget.period``, or a week when the
    budget counts labelled rows) and in total.

    See :func:`modelpilot.policy.roi.summarize` for the fields; times are ISO strings.
    """
    task = _task(store, model, cfg)
    out = summarize(retrain_rows(store, model), cfg.costs, period_seconds=cfg.budget.report_seconds, task=task)
    for row in out["retrains"]:
        row["time"] = row["time"].isoformat() if isinstance(row["time"], datetime) else row["time"]
    out.update(model=model, task=task, period_seconds=cfg.budget.report_seconds,
               counterfactual={"fraction": cfg.costs.counterfactual.fraction,
                               "period_seconds": cfg.costs.counterfactual.period})
    return out


def _task(store: Store, model: str, cfg: PilotConfig) -> str:
    versions = store.list_versions(model)
    if versions:
        return versions[-1].task
    return cfg.model.task if cfg.model.task != "auto" else "classification"
