"""``modelpilot demo``: the whole loop on a drifting churn scenario, in one folder.

What happens, in order:

1. A config and a history of customers are written (``pilot.yaml``, ``data/``).
2. Version 1 is trained, validated and registered as champion.
3. The server starts on a free loopback port; traffic is streamed to it over HTTP in
   batches, and each batch's true labels are sent to ``/feedback`` one batch later.
4. At batch ``drift_segment_at`` the churn behaviour flips for customers in the north
   region only; at ``drift_all_at`` it flips everywhere.
5. The controller ticks every few batches: it monitors the window, the triggers fire,
   a retrain runs in the executor, the gate compares challenger and champion on the same
   recent holdout, and the rollout strategy promotes the winner; the server hot-swaps.

The phases' metric is measured on the served predictions and their labels: before the
drift, during it (until the last promotion), and after recovery.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from modelpilot._follow import event_dict
from modelpilot.errors import ConfigError

MARKER = "# written by 'modelpilot demo'"


def demo_config(rollout: str = "replace") -> dict[str, Any]:
    """The demo's pilot.yaml: short windows and cooldowns so the loop turns in a minute."""
    return {
        "model": {
            "name": "churn", "target": "churned", "task": "classification",
            "time_column": "ts", "id_column": "customer_id", "segments": ["region"],
        },
        "data": {"source": "data/customers.parquet"},
        "tuning": {"n_trials": 4, "parallel": 2},
        "evaluation": {"metric": "accuracy", "permutation_repeats": 2},
        "gates": {"min_metrics": {"accuracy": 0.6}, "test": "bootstrap", "n_bootstrap": 500},
        "costs": {"compute_per_hour": 0.40, "storage_per_gb_month": 0.023, "value_per_correct_prediction": 0.50,
                  "cost_per_error": 1.00},
        "serving": {"log_flush_interval": 0.5, "refresh_interval": 0.2},
        "monitoring": {"window_size": 600, "min_samples": 150},
        # the demo's clock advances DemoPlan.batch_minutes per batch of traffic
        "triggers": {
            "performance_drop": {"threshold": 0.05, "min_samples": 250, "cooldown": "2h"},
            "segment_performance_drop": {"threshold": 0.10, "min_samples": 90, "cooldown": "2h"},
            "feature_drift": {"enabled": True, "threshold": 0.5, "min_samples": 300, "cooldown": "6h"},
        },
        "budget": {"period": "1d", "max_retrains": 4, "max_cost": 5.0},
        "retraining": {
            "recent_rows": 600, "history_fraction": 0.1, "holdout_fraction": 0.25,
            "upsample_segments": True, "warm_start": True, "tune": False,
        },
        "rollout": {"strategy": rollout, **_DEMO_ROLLOUT.get(rollout, {})},
    }


# demo-sized progressive rollouts: a tick sees ~300 requests, so each decides in a few ticks.
# The canary's divergence limit is loose on purpose: after a concept drift a good challenger
# SHOULD predict differently from the stale champion; the labelled metric guards quality.
_DEMO_ROLLOUT: dict[str, dict[str, Any]] = {
    "shadow": {"shadow": {"min_labelled": 200}},
    "ab": {"ab": {"share": 0.5, "min_detectable_effect": 0.1}},
    "canary": {"canary": {"steps": [10, 50, 100], "hold_requests": 40, "max_divergence": 0.5, "min_labelled": 150}},
}


@dataclass
class DemoPlan:
    batches: int = 40
    batch_size: int = 150
    drift_segment_at: int = 10
    drift_all_at: int = 14
    tick_every: int = 2
    batch_minutes: int = 30  # simulated time per batch: cooldowns are in simulated hours
    min_after_promotion: int = 8
    seed: int = 0


@dataclass
class _Phase:
    correct: list[bool] = field(default_factory=list)

    def value(self) -> float | None:
        return float(np.mean(self.correct)) if self.correct else None


def prepare_folder(folder: Path) -> None:
    """Refuse a folder holding someone else's project; clear a previous demo's state."""
    config = folder / "pilot.yaml"
    if config.exists() and MARKER not in config.read_text():
        raise ConfigError(
            f"{config} exists and was not written by the demo: run 'modelpilot demo' in an empty folder"
        )
    shutil.rmtree(folder / ".modelpilot", ignore_errors=True)


def _stream(plan: DemoPlan, start: datetime) -> pd.DataFrame:
    from modelpilot.data.synth import customers

    n = plan.batches * plan.batch_size
    seg_at = plan.drift_segment_at * plan.batch_size
    all_at = plan.drift_all_at * plan.batch_size
    calm = customers(seg_at, seed=plan.seed + 1, start=start)
    north = customers(all_at - seg_at, seed=plan.seed + 2, start=start, drift={"at": 0.0, "segment": "north", "strength": 1.0})
    everyone = customers(n - all_at, seed=plan.seed + 3, start=start, drift={"at": 0.0, "strength": 1.0})
    frame = pd.concat([calm, north, everyone], ignore_index=True)
    frame.insert(0, "customer_id", [f"L{i:07d}" for i in range(len(frame))])
    return frame


def run_demo(
    folder: Path,
    *,
    plan: DemoPlan | None = None,
    rollout: str = "replace",
    on_event: Callable[[dict[str, Any]], None] | None = None,
    on_progress: Callable[[str, int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Run the loop end to end in ``folder``; returns the ``--json`` document.

    Raises:
        ConfigError: the folder holds a project the demo did not write.
    """
    from modelpilot.controller import Controller
    from modelpilot.data.synth import customers
    from modelpilot.pilot import Pilot
    from modelpilot.serving.app import create_app
    from modelpilot.serving.server import start_in_thread

    plan = plan or DemoPlan()
    minutes_per_batch = plan.batch_minutes
    folder.mkdir(parents=True, exist_ok=True)
    prepare_folder(folder)
    (folder / "data").mkdir(exist_ok=True)
    history = customers(4000, seed=plan.seed)
    history.insert(0, "customer_id", [f"C{i:07d}" for i in range(len(history))])
    history.to_parquet(folder / "data" / "customers.parquet", index=False)
    (folder / "pilot.yaml").write_text(MARKER + "\n" + yaml.safe_dump(demo_config(rollout), sort_keys=False))

    started = time.monotonic()
    seen: set[int] = set()
    with Pilot.from_config(folder / "pilot.yaml") as pilot:
        cfg, store = pilot.cfg, pilot.store

        def publish() -> None:
            for ev in reversed(store.events(model=cfg.model.name, limit=500)):
                if ev.id not in seen:
                    seen.add(ev.id)
                    if on_event is not None:
                        on_event(event_dict(ev, started_wall))

        started_wall = datetime.now(UTC)
        trained = pilot.train(progress=on_progress)
        publish()
        app = create_app(cfg, store, pilot.artifacts)
        server, base_url = start_in_thread(app)
        sim_start = datetime.now(UTC)
        sim_batches = [0]
        controller = Controller(
            cfg, store, pilot.artifacts, pilot.executor,
            clock=lambda: sim_start + timedelta(minutes=minutes_per_batch * sim_batches[0]),
        )
        stream = _stream(plan, history["ts"].max().to_pydatetime() + timedelta(minutes=5))
        names = [f["name"] for f in store.get_version(cfg.model.name, trained.version).signature]
        phases = {"before": _Phase(), "drift": _Phase(), "recovered": _Phase()}
        by_batch: list[tuple[int, list[bool]]] = []
        promoted_at: list[int] = []
        pending: tuple[list[str], list[int]] | None = None
        url = f"{base_url}/v1/models/{cfg.model.name}"
        max_batches = plan.batches + 30  # a bound on waiting for a progressive rollout
        try:
            with httpx.Client(timeout=60.0) as client:
                batch = 0
                while batch < plan.batches:
                    rows = stream.iloc[batch * plan.batch_size : (batch + 1) * plan.batch_size]
                    instances = rows[names].astype(object).where(rows[names].notna(), None).to_dict("records")
                    ids = rows["customer_id"].tolist()
                    resp = client.post(f"{url}/predict", json={"instances": instances, "ids": ids})
                    resp.raise_for_status()
                    preds = [str(p) for p in resp.json()["predictions"]]
                    truth = [str(v) for v in rows["churned"].tolist()]
                    by_batch.append((batch, [p == t for p, t in zip(preds, truth, strict=True)]))
                    if pending is not None:  # labels arrive one batch late
                        client.post(f"{url}/feedback", json={"ids": pending[0], "labels": pending[1]}).raise_for_status()
                    pending = (ids, rows["churned"].astype(int).tolist())
                    batch += 1
                    sim_batches[0] = batch
                    if on_progress is not None:
                        on_progress("streaming traffic", batch, plan.batches)
                    if batch % plan.tick_every == 0:
                        app.state.writer.flush()
                        result = controller.tick()
                        if result.promoted is not None:
                            promoted_at.append(batch)
                            _wait_for_swap(client, url, result.promoted)
                        publish()
                    if batch == plan.batches and _rollout_undecided(store, cfg.model.name) and batch < max_batches:
                        # keep the traffic and the ticks going until the rollout decides
                        plan = DemoPlan(**{**plan.__dict__, "batches": batch + plan.tick_every})
                        stream = _extend(stream, plan, history)
                    last = promoted_at[-1] if promoted_at else None
                    if batch == plan.batches and last is not None and plan.batches - last < plan.min_after_promotion:
                        plan = DemoPlan(**{**plan.__dict__, "batches": last + plan.min_after_promotion})
                        stream = _extend(stream, plan, history)
        finally:
            server.stop()
        publish()
        drift_start = plan.drift_segment_at
        recovered_from = promoted_at[-1] if promoted_at else None
        for b, correct in by_batch:
            if b < drift_start:
                phases["before"].correct += correct
            elif recovered_from is None or b < recovered_from:
                phases["drift"].correct += correct
            else:
                phases["recovered"].correct += correct
        events = [event_dict(ev, started_wall) for ev in reversed(store.events(model=cfg.model.name, limit=1000))]
        retrains = [e for e in events if e["kind"] == "retrain_finished"]
        return {
            "metric": "accuracy",
            "phases": {k: p.value() for k, p in phases.items()},
            "retrains": len(retrains),
            "promotions": sum(e["kind"] == "promoted" for e in events),
            "cost": round(sum(float(e["numbers"].get("cost") or 0.0) for e in retrains), 6),
            "initial_training_cost": trained.cost.get("total"),
            "batches": len(by_batch),
            "batch_size": plan.batch_size,
            "drift": {"segment_north_from_batch": plan.drift_segment_at, "everyone_from_batch": plan.drift_all_at},
            "promoted_at_batches": promoted_at,
            "seconds": round(time.monotonic() - started, 1),
            "server": base_url,
            # the demo's server stops when it returns; this command serves its dashboard again
            "dashboard": f"modelpilot ui -c {folder / 'pilot.yaml'}",
            "events": events,
        }


def _extend(stream: pd.DataFrame, plan: DemoPlan, history: pd.DataFrame) -> pd.DataFrame:
    """More drifted traffic when the last promotion came too late to show a recovery."""
    from modelpilot.data.synth import customers

    need = plan.batches * plan.batch_size - len(stream)
    if need <= 0:
        return stream
    more = customers(need, seed=plan.seed + 4 + len(stream), start=stream["ts"].max().to_pydatetime(),
                     drift={"at": 0.0, "strength": 1.0})
    more.insert(0, "customer_id", [f"L{i:07d}" for i in range(len(stream), len(stream) + need)])
    return pd.concat([stream, more], ignore_index=True)


def _rollout_undecided(store: Any, model: str) -> bool:
    from modelpilot.rollout.state import active

    return active(store, model) is not None


def _wait_for_swap(client: httpx.Client, url: str, version: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(url).json().get("champion") == version:
            return
        time.sleep(0.05)
