"""Metric logging throughput of the metadata store (SQLite, the embedded default).

Logs 100,000 metric points into a fresh SQLite store twice, through the public API:

* batched: ``Store.log_metrics`` with 10,000 points per call (one transaction each);
* per call: one ``Store.log_metric`` call per point (buffered, flushed at 10,000 points
  and on ``close()``; the time includes the final flush).

Then reopens the store and checks that every point of both modes is in the database.

Targets: >= 200,000 points/s batched, >= 20,000 points/s per call.

Run: ``python benchmarks/bench_tracking.py [--points N]``; exits 1 when a target is
missed or points are missing.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from modelpilot.store import Store

TARGETS = {"batched": 200_000.0, "per call": 20_000.0}
KEYS = [f"metric_{i}" for i in range(10)]
BATCH = 10_000


def bench_batched(store: Store, run_id: int, n: int) -> float:
    points = [(KEYS[i % len(KEYS)], i * 0.001, i // len(KEYS)) for i in range(n)]
    start = time.perf_counter()
    for lo in range(0, n, BATCH):
        store.log_metrics(run_id, points[lo : lo + BATCH])
    return n / (time.perf_counter() - start)


def bench_per_call(url: str, run_id: int, n: int) -> float:
    store = Store.open(url)
    store.get_run(run_id)  # warm the run check, as a training loop would after create_run
    log, keys, width = store.log_metric, KEYS, len(KEYS)
    start = time.perf_counter()
    for i in range(n):
        log(run_id, keys[i % width], i * 0.001, i // width)
    store.close()  # flushes what is still buffered
    return n / (time.perf_counter() - start)


def count_points(url: str, path: Path, run_id: int) -> tuple[int, int]:
    """Points of a run, through the public API and through a plain SQL count."""
    with Store.open(url) as store:
        api = sum(len(store.metric_history(run_id, key)) for key in KEYS)
    with sqlite3.connect(path) as conn:
        (sql,) = conn.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
    return api, sql


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    n = parser.parse_args().points
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.db"
        url = f"sqlite:///{path}"
        with Store.open(url) as store:
            batched_run = store.create_run("bench", kind="benchmark").id
            per_call_run = store.create_run("bench", kind="benchmark").id
            rates = {"batched": bench_batched(store, batched_run, n)}
        rates["per call"] = bench_per_call(url, per_call_run, n)
        counts = {
            "batched": count_points(url, path, batched_run),
            "per call": count_points(url, path, per_call_run),
        }

    ok = True
    print(f"metric logging into a fresh SQLite store, {n:,} points per mode")
    for mode, rate in rates.items():
        target, (api, sql) = TARGETS[mode], counts[mode]
        met = rate >= target
        stored = api == sql == n
        ok = ok and met and stored
        print(
            f"  {mode:<9} {rate:>12,.0f} points/s  target >= {target:>9,.0f}  "
            f"{'OK' if met else 'BELOW TARGET'}  stored {sql:,}/{n:,} "
            f"{'OK' if stored else 'MISSING POINTS'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
