"""How fast the dashboard's monitoring page renders over a year of hourly reports.

    /work/main/.venv/bin/python benchmarks/bench_ui.py               # 8,760 reports
    /work/main/.venv/bin/python benchmarks/bench_ui.py --reports 20000 --repeat 5

Writes one registered version, N hourly monitoring reports (8 drift features, 4 segments,
measured and estimated performance) and a few hundred events into a fresh SQLite store,
then requests ``/ui/models/churn/monitoring`` through the real app (in-process ASGI
client) and prints the time of the first (cold) and the median of the next requests, plus
the page size. The page aggregates on the server (SQL JSON extraction + pandas buckets), so
the browser receives a few hundred points per series whatever N is. The goal: well under
a second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from modelpilot.config import PilotConfig
from modelpilot.pilot import Pilot
from modelpilot.ui import create_ui_app

FEATURES = ["age", "tenure", "spend", "calls", "discount", "plan", "channel", "region"]
SEGMENTS = ["region=north", "region=south", "region=east", "region=west"]


def fill(pilot: Pilot, n: int) -> None:
    store = pilot.store
    run = store.create_run("churn")
    store.register_version("churn", run_id=run.id, artifact_key="k", reference_key=None,
                           signature=[{"name": f, "type": "float"} for f in FEATURES], task="classification",
                           classes=[0, 1], metrics={"accuracy": 0.83}, lineage={})
    store.set_alias("churn", "champion", 1)
    rng = np.random.default_rng(0)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for h in range(n):
        t = start + timedelta(hours=h)
        drift = {f: float(v) for f, v in zip(FEATURES, rng.gamma(2.0, 0.03, len(FEATURES)), strict=True)}
        perf = float(0.83 - 0.05 * (h % 720) / 720 + rng.normal(0, 0.01))
        store.add_monitoring_report(
            "churn", 1, window_start=t - timedelta(hours=1), window_end=t, n_predictions=2000, n_labelled=1500,
            details_key=None,
            summary={"metric": "accuracy", "version": 1, "drift_share": sum(v > 0.1 for v in drift.values()) / 8,
                     "feature_drift": drift, "prediction_drift": float(rng.gamma(2, 0.02)), "performance": perf,
                     "estimated_performance": perf + 0.01,
                     "segment_performance": {s: {"value": perf + float(rng.normal(0, 0.02)), "n": 300} for s in SEGMENTS}},
        )
        if h % 720 == 719:
            for kind in ("trigger_fired", "retrain_started", "retrain_finished", "promoted"):
                store.add_event(kind, model="churn", subject="v1", reason="benchmark")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=8760)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with tempfile.TemporaryDirectory() as tmp:
        cfg = PilotConfig.from_dict({"model": {"name": "churn", "target": "churned", "segments": ["region"]}},
                                    base_dir=Path(tmp))
        with Pilot(cfg) as pilot:
            t0 = time.perf_counter()
            fill(pilot, args.reports)
            print(f"wrote {args.reports:,} reports in {time.perf_counter() - t0:.1f} s")
            client = TestClient(create_ui_app(cfg, pilot.store, pilot.artifacts))
            times = []
            for _ in range(args.repeat + 1):
                t0 = time.perf_counter()
                r = client.get("/ui/models/churn/monitoring")
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200 and r.text.count('class="plotly-graph-div"') == 4, r.text[:500]
            print(f"monitoring page: cold {times[0] * 1000:.0f} ms, warm median "
                  f"{statistics.median(times[1:]) * 1000:.0f} ms over {args.repeat} requests, "
                  f"{len(r.content) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
