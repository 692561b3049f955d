"""The loop across a fleet: reports in, drift per device and pooled, triggers, canary, cost.

* :func:`ingest` checks and stores one report (a replayed sequence number is acknowledged
  and counted, never stored twice).
* :func:`desired_version` is what a device should run: its pin, else the candidate while it
  is in a running canary, else the champion.
* :func:`fleet_tick` — one pass of the fleet loop over the reports since the champion
  changed: each device's drift (a device is *flagged* when a feature drifted on it), the
  pooled summary and every device's summary through the same triggers as the server
  (:func:`modelpilot.policy.triggers.evaluate`), a retrain when one fires, and the canary.
* The canary across devices: a new version goes to ``edge.canary_share`` of the devices
  (at least one, chosen by a hash of the name, so the same devices go first every time);
  once they have scored ``edge.canary_rows`` rows on it, it is judged with the server
  canary's limits (``rollout.canary``: error rate, p99 latency against the champion's
  devices, score divergence, labelled metric) and promoted — every device pulls it — or
  rolled back, and the canary devices return to the champion.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from modelpilot.artifacts import get_json
from modelpilot.config import PilotConfig
from modelpilot.edge.home import (
    REPORT_FORMAT,
    MalformedReport,
    check_report,
    performance_from_counts,
    pool,
    summarize_counts,
)
from modelpilot.errors import NotFound
from modelpilot.metrics import format_shortfall, shortfall
from modelpilot.monitoring.drift.base import js_distance
from modelpilot.store import EdgeDeviceRecord, Store

FLEET = "edge_fleet"
ROLLOUT = "edge_rollout"
LATENCY_EDGES_MS = [round(0.01 * 10 ** (i / 8), 6) for i in range(1, 49)]  # as the agent's
MIN_HEALTH_ROWS = 20


def _reference(store: Store, artifacts: Any, model: str, version: int) -> tuple[Any, dict[str, Any]]:
    record = store.get_version(model, version)
    ref = get_json(artifacts, record.reference_key) if record.reference_key else {"columns": {}}
    return record, ref


# --------------------------------------------------------------------------- reports in


def ingest(cfg: PilotConfig, store: Store, artifacts: Any, device: str, doc: Any, size: int) -> dict[str, Any]:
    """Check and store one report of ``device``.

    Returns:
        ``{"accepted": True, "seq", "id"}``, or ``{"duplicate": True, "seq"}`` for a replay.

    Raises:
        UnknownDevice: no such device (404).
        MalformedReport: the report is not what the agent sends (422); counted.
    """
    from modelpilot.edge.bundle import device_profile

    rec = store.get_device(device)
    try:
        if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT or not isinstance(doc.get("version"), int):
            raise MalformedReport(f"the report from {device!r} is not a JSON object with format {REPORT_FORMAT!r} "
                                  "and an integer 'version'; send what the modelpilot edge agent writes")
        version = int(doc["version"])
        if doc.get("model") not in (None, rec.model):
            raise MalformedReport(f"the report is about model {doc.get('model')!r}; device {device!r} runs "
                                  f"{rec.model!r}")
        try:
            record, ref = _reference(store, artifacts, rec.model, version)
        except NotFound:
            raise MalformedReport(f"the report names version {version} of {rec.model}, which does not "
                                  "exist; send reports scored by a bundle home published") from None
        check_report(doc, device, device_profile(ref, list(cfg.model.segments)))
    except MalformedReport as exc:
        store.update_device_info(device, {"+": {"refused": 1}, "last_refused": str(exc)[:500]})
        raise
    start, end = (_time(doc.get(k)) for k in ("window_start", "window_end"))
    report_id = store.add_edge_report(device, version=record.version, seq=doc["seq"], rows=doc["rows"],
                                      size=size, payload=doc, window_start=start, window_end=end)
    if report_id is None:
        return {"duplicate": True, "seq": doc["seq"]}
    store.update_device_info(device, {"+": {"cpu_seconds": float(doc.get("cpu_seconds") or 0.0),
                                            "source_bytes": int(doc.get("source_bytes") or 0)}})
    for event in doc.get("events") or []:
        if isinstance(event, dict) and event.get("kind") == "bundle_refused":
            store.update_device_info(device, {"+": {"bundle_refused": 1}})
            store.add_event("edge_bundle_refused", model=rec.model, subject=device, actor=f"device:{device}",
                            reason=f"device {device} refused a bundle: {str(event.get('reason'))[:300]}",
                            numbers={"sha256": event.get("sha256")})
    return {"accepted": True, "seq": doc["seq"], "id": report_id}


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- what a device runs


def canary_devices(devices: list[str], share: float) -> list[str]:
    """The devices that get a new version first: ``share`` of them (at least one), by hash."""
    ranked = sorted(devices, key=lambda d: hashlib.sha256(d.encode()).hexdigest())
    return sorted(ranked[: max(1, math.ceil(share * len(ranked)))]) if ranked else []


def desired_version(store: Store, device: EdgeDeviceRecord) -> int:
    """The version ``device`` should run: its pin, a running canary's candidate, or the champion.

    Raises:
        NotFound: the model has no champion yet.
    """
    if device.pinned_version is not None:
        return device.pinned_version
    rollout = store.get_state(ROLLOUT, device.model) or {}
    if rollout.get("status") == "in_progress" and device.device in rollout.get("canary", []):
        return int(rollout["candidate"])
    champion = store.get_alias(device.model, "champion")
    if champion is None:
        raise NotFound(f"model {device.model!r} has no champion to send to device {device.device!r}")
    return int(champion)


# --------------------------------------------------------------------------- the fleet tick


def _summary(cfg: PilotConfig, record: Any, ref: dict[str, Any], agg: dict[str, Any], now: datetime,
             min_rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    method = cfg.edge.drift_method or cfg.monitoring.drift_method
    threshold = cfg.edge.drift_threshold if cfg.edge.drift_threshold is not None else (
        cfg.monitoring.drift_threshold if cfg.edge.drift_method is None else None)
    return summarize_counts(agg, ref, task=record.task, metric=cfg.primary_metric, classes=record.classes,
                            method=method, threshold=threshold, min_samples=min_rows,
                            window_end=now.isoformat())


def fleet_tick(cfg: PilotConfig, store: Store, artifacts: Any, *, now: datetime | None = None,
               retrain: Callable[[str], int | None] | None = None) -> dict[str, Any]:
    """One pass of the fleet loop (see the module docstring).

    Args:
        retrain: called with the reason when a trigger fires; returns the new version to
            canary across the devices (None: nothing to roll out).

    Returns:
        ``devices`` (name → rows, drift share, drifted features, flagged), ``pooled`` (the
        summary), ``decisions``, ``retrain`` (the reason or None), ``rollout`` (the canary
        state after this tick).
    """
    from modelpilot.policy.trigger_state import RowClock
    from modelpilot.policy.triggers import (
        MonitoringSummary,
        TriggerState,
        evaluate,
        reset_reference,
    )

    now = now or datetime.now(UTC)
    model = cfg.model.name
    out: dict[str, Any] = {"devices": {}, "pooled": None, "decisions": [], "retrain": None}
    out["rollout"] = _canary_tick(cfg, store, artifacts, model)
    champion = store.get_alias(model, "champion")
    if champion is None:
        return out
    state = store.get_state(FLEET, model) or {}
    if state.get("champion") != champion:  # a new champion: judge only what it scored
        last = store.edge_reports(model, after_id=state.get("since_id", 0))
        state = {"champion": champion, "since_id": last[-1].id if last and state else 0}
    record, ref = _reference(store, artifacts, model, champion)
    reports = store.edge_reports(model, after_id=int(state["since_id"]), version=champion)
    devices: dict[str, list[dict[str, Any]]] = {}
    for r in reports:
        devices.setdefault(r.device, []).append(r.payload)
    clock = RowClock.of_counts([r.received_at for r in reports], [r.rows for r in reports])
    triggers = TriggerState.from_dict(state.get("triggers"))
    base = record.metrics.get(cfg.primary_metric)
    if triggers.reference is None and base is not None:
        triggers = reset_reference(triggers, base, f"v{champion} validation", metric=cfg.primary_metric, now=now,
                                   triggers=cfg.triggers)
    fired: tuple[str, Any] | None = None
    scopes: list[tuple[str, dict[str, Any]]] = []
    for name, payloads in sorted(devices.items()):
        agg = pool(payloads)
        if agg is None:
            continue
        summary, _ = _summary(cfg, record, ref, agg, now, cfg.edge.min_rows)
        flagged = bool(summary["drifted_features"])
        info = {"rows": agg["rows"], "drift_share": summary["drift_share"],
                "drifted_features": summary["drifted_features"], "flagged": flagged,
                "performance": summary["performance"]}
        out["devices"][name] = info
        previous = store.get_device(name).info.get("drift") or {}
        store.update_device_info(name, {"drift": {**info, "version": champion, "at": now.isoformat()}})
        if flagged and not previous.get("flagged"):
            store.add_event("edge_drift", model=model, subject=name, actor="edge",
                            reason=f"device {name}: {', '.join(summary['drifted_features'])} drifted on "
                                   f"{agg['rows']} rows (v{champion})", numbers=info)
        scopes.append((f"device {name}", summary))
    everything = pool([p for ps in devices.values() for p in ps])
    if everything is not None:
        pooled, _ = _summary(cfg, record, ref, everything, now, cfg.edge.min_rows)
        out["pooled"] = pooled
        scopes.insert(0, ("the pooled fleet", pooled))
    new_state = triggers
    for scope, summary in scopes:
        if summary["n_predictions"] < cfg.edge.min_rows:
            continue
        # the waits counted in rows (cooldowns, the budget's period) count the rows reported since
        outcome = evaluate(cfg, replace(MonitoringSummary.from_dict(summary), rows=clock), triggers, now)
        out["decisions"].extend({**d.to_dict(), "scope": scope} for d in outcome.decisions if d.status != "quiet")
        if scope == "the pooled fleet":
            new_state = outcome.new_state
        if outcome.retrain and fired is None:
            fired = (f"{scope}: {outcome.reason}", outcome)
            new_state = outcome.new_state
    state["triggers"] = new_state.to_dict()
    store.put_state(FLEET, model, state)
    if fired is not None:
        reason, outcome = fired
        out["retrain"] = reason
        store.add_event("edge_retrain_triggered", model=model, actor="edge", reason=reason,
                        numbers={"devices": sorted(devices), "from": "aggregates"})
        rollout = store.get_state(ROLLOUT, model) or {}
        if retrain is not None and rollout.get("status") != "in_progress":
            version = retrain(reason)
            if version is not None:
                out["rollout"] = start_canary(cfg, store, model, version, reason)
    return out


# --------------------------------------------------------------------------- the canary


def start_canary(cfg: PilotConfig, store: Store, model: str, candidate: int, reason: str = "") -> dict[str, Any]:
    """Send ``candidate`` to the canary share of the devices (its bundle must be published)."""
    champion = store.get_alias(model, "champion")
    names = [d.device for d in store.list_devices(model)]
    last = store.edge_reports(model)
    canary = canary_devices(names, cfg.edge.canary_share)
    state = {"status": "in_progress", "candidate": int(candidate), "champion": champion, "canary": canary, "started_at": datetime.now(UTC).isoformat(),
             "after_id": last[-1].id if last else 0, "reason": reason}
    store.put_state(ROLLOUT, model, state)
    store.add_event("edge_canary_started", model=model, subject=f"v{candidate}", actor="edge",
                    reason=f"v{candidate} goes to {', '.join(canary)} first "
                           f"({len(canary)} of {len(names)} devices){': ' + reason if reason else ''}",
                    numbers={"canary": canary, "champion": champion})
    return state


def _canary_tick(cfg: PilotConfig, store: Store, artifacts: Any, model: str) -> dict[str, Any] | None:
    state = store.get_state(ROLLOUT, model)
    if not state or state.get("status") != "in_progress":
        return state
    reports = store.edge_reports(model, after_id=int(state["after_id"]))
    cand = pool(r.payload for r in reports if r.version == state["candidate"] and r.device in state["canary"])
    champ = pool(r.payload for r in reports if r.version == state["champion"])
    record = store.get_version(model, int(state["candidate"]))
    breaches, numbers = canary_health(cfg, champ, cand, record.task, cfg.primary_metric, record.classes)
    rows = cand["rows"] if cand else 0
    numbers["canary_rows"] = rows
    if breaches:
        state.update(status="rolled_back", ended_at=datetime.now(UTC).isoformat(), breaches=breaches)
        store.add_event("edge_canary_rolled_back", model=model, subject=f"v{state['candidate']}", actor="edge",
                        reason="; ".join(breaches) + f"; canary devices return to v{state['champion']}",
                        numbers=numbers)
    elif rows >= cfg.edge.canary_rows:
        store.set_alias(model, "champion", int(state["candidate"]))
        state.update(status="promoted", ended_at=datetime.now(UTC).isoformat())
        store.add_event("edge_canary_promoted", model=model, subject=f"v{state['candidate']}", actor="edge",
                        reason=f"healthy on {rows} rows of {', '.join(state['canary'])}; every device gets it now",
                        numbers=numbers)
    state["numbers"] = numbers
    store.put_state(ROLLOUT, model, state)
    return state


def _p99(hist: list[int]) -> float | None:
    total = sum(hist)
    if not total:
        return None
    k = int(np.searchsorted(np.cumsum(hist), 0.99 * total))
    return LATENCY_EDGES_MS[min(k, len(LATENCY_EDGES_MS) - 1)]  # the bucket's upper edge


def canary_health(cfg: PilotConfig, champ: dict[str, Any] | None, cand: dict[str, Any] | None, task: str,
                  metric: str, classes: list[Any] | None = None) -> tuple[list[str], dict[str, Any]]:
    """The server canary's limits (``rollout.canary``) judged on pooled device aggregates."""
    cc = cfg.rollout.canary
    breaches: list[str] = []
    numbers: dict[str, Any] = {}
    if cand is None:
        return breaches, numbers
    errors = sum(cand["errors"].values())
    calls = cand["rows"] + errors
    if calls >= MIN_HEALTH_ROWS:
        rate = errors / calls
        numbers["error_rate"] = rate
        if rate > cc.max_error_rate:
            breaches.append(f"error rate {rate:.1%} > {cc.max_error_rate:.1%} ({errors} of {calls} rows failed "
                            "on the canary devices)")
    if champ is None:
        return breaches, numbers
    ours, theirs = _p99(cand["latency_histogram"]), _p99(champ["latency_histogram"])
    if ours is not None and theirs is not None and min(cand["rows"], champ["rows"]) >= cc.min_latency_samples:
        limit = max(theirs * cc.max_latency_ratio, theirs + cc.latency_slack_ms)
        numbers.update(latency_p99_ms=ours, champion_latency_p99_ms=theirs)
        if ours > limit:
            breaches.append(f"latency p99 {ours:.2f} ms vs the champion devices' {theirs:.2f} ms: above "
                            f"{limit:.2f} ms (rollout.canary.max_latency_ratio, latency_slack_ms)")
    if cand.get("score") and champ.get("score") and min(cand["rows"], champ["rows"]) >= MIN_HEALTH_ROWS \
            and len(cand["score"]) == len(champ["score"]):
        div = js_distance(np.asarray(champ["score"], float) / champ["rows"], np.asarray(cand["score"], float) / cand["rows"])
        numbers["divergence"] = div
        if div > cc.max_divergence:
            breaches.append(f"score divergence (Jensen-Shannon) {div:.3f} > {cc.max_divergence}")
    a = performance_from_counts(champ["labelled"].get("*", []), task, classes) if champ["labelled"] else {}
    b = performance_from_counts(cand["labelled"].get("*", []), task, classes) if cand["labelled"] else {}
    if metric in a and metric in b and min(a["n"], b["n"]) >= cc.min_labelled:
        gap = shortfall(metric, b[metric], a[metric])
        numbers.update(metric=metric, champion_metric=a[metric], challenger_metric=b[metric])
        if gap > cc.metric_tolerance:
            breaches.append(f"{metric} {b[metric]:.4f} vs champion {a[metric]:.4f} on device labels: worse by "
                            f"{format_shortfall(metric, gap)} > tolerance {format_shortfall(metric, cc.metric_tolerance)}")
    return breaches, numbers


# --------------------------------------------------------------------------- cost


def device_costs(cfg: PilotConfig, store: Store, model: str) -> list[dict[str, Any]]:
    """Per device: compute (measured inference CPU time), storage (the bundle it runs),
    transmission (bytes sent home) — and what shipping its raw rows home would cost instead.

    Uses ``costs.compute_per_hour``, ``costs.storage_per_gb_month`` (one month of the bundle)
    and ``costs.transfer_per_gb``.
    """
    from modelpilot.edge.bundle import published

    c = cfg.costs
    rows = []
    for d in store.list_devices(model):
        info = d.info
        entry = published(store, model, d.version) if d.version is not None else None
        bundle_bytes = int(entry["bytes"]) if entry else 0
        compute = float(info.get("cpu_seconds", 0.0)) / 3600.0 * c.compute_per_hour
        storage = bundle_bytes / 1e9 * c.storage_per_gb_month
        sent = int(info.get("bytes", 0))
        transfer = sent / 1e9 * c.transfer_per_gb
        raw = int(info.get("source_bytes", 0))
        rows.append({
            "device": d.device, "rows": int(info.get("rows", 0)), "cpu_seconds": float(info.get("cpu_seconds", 0.0)),
            "bundle_bytes": bundle_bytes, "bytes_sent": sent, "raw_bytes": raw,
            "compute": compute, "storage": storage, "transfer": transfer, "total": compute + storage + transfer,
            "raw_transfer": raw / 1e9 * c.transfer_per_gb, "currency": c.currency,
            "share_of_raw": sent / raw if raw else None,
        })
    return rows
