"""Scale benchmark: Optuna trials on the local pool vs a two-node Ray cluster, and
``modelpilot serve --workers 2`` vs ``--workers 1``.

1. **Trials.** One search (``training.tune.tune``, the code ``train`` runs) of a small
   HistGradientBoosting regression (2,000 rows, ``max_iter`` 10-30), ``--trials`` trials,
   2 trial workers, on (a) the local process pool with the study in a temporary journal
   file (what a SQLite store gets), (b) the local pool with the study in PostgreSQL, and
   (c) the Ray executor on a two-node cluster started here (``ray start``, one CPU per
   node, stopped by pid at the end), study in PostgreSQL. Each is run once to warm the
   workers up, then measured. Per-trial overhead = (wall x workers - the trials' own run
   time from Optuna's start/complete stamps) / trials: what scheduling and the storage
   cost per trial beyond the fit itself. Target: < 50 ms per trial on Ray. All on one
   machine, so no speed-up is expected from Ray.
2. **Serving.** ``modelpilot serve --workers N`` for N = 1, 2 (prediction log on), single-row
   predicts from ``wrk`` (one thread) over 16 keep-alive connections. Target: workers 2
   >= 1.6x the requests/s of workers 1 on 2 cores.
3. **Prediction log.** ``--log-rows`` single-row predictions (6 features, a binary class,
   probabilities) and their labels written through the real ``PredictionLogWriter`` to a
   local folder, then scanned by the controller's reader (``PredictionLogReader.joined``):
   bytes per logged row (so GB/day at a request rate) and the scan's rows/s and s/GB.
   Figures for the scale plan in docs/scaling.md; no target.

The machine's load average is printed before each part: other processes on the machine
take cores from the servers and the trials, and the figures move with them.

Usage::

    .venv/bin/python benchmarks/bench_scale.py [--trials 40] [--seconds 10] [--repeat 2]
        [--skip-trials] [--skip-ray] [--skip-serve] [--log-rows 200000]

Needs PostgreSQL at MODELPILOT_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test)
for the study storage, ``modelpilot[ray]`` for the cluster and ``wrk`` for the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import optuna
import orjson
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import WRK_INSTALL, free_port, have_wrk, stop, wait_until, wrk  # noqa: E402
from _envs.serving_model import make_data  # noqa: E402
from bench_serving import register_hand_built  # noqa: E402

from modelpilot.data import FeatureSpec  # noqa: E402
from modelpilot.executors import Executor, LocalExecutor  # noqa: E402
from modelpilot.testing import postgres as pg  # noqa: E402
from modelpilot.training.tune import open_storage, storage_for, tune  # noqa: E402

TARGET_OVERHEAD_MS = 50.0
TARGET_SPEEDUP = 1.6
CONCURRENCY = 16


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


# ---------------------------------------------------------------------------- trials


def _job() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000), "c": rng.normal(size=2000)})
    y = pd.Series(2 * X["a"] - X["b"] * X["c"] + rng.normal(0, 0.5, 2000))
    return {
        "estimator": None, "task": "regression", "base_params": {},
        "space": {"max_iter": {"type": "int", "low": 10, "high": 30},
                  "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True}},
        "features": FeatureSpec(target="y", task="regression", numeric=["a", "b", "c"], categorical=[]),
        "X": X, "y": y, "metric": "rmse", "folds": 1, "pruning": False, "time_ordered": False,
        "seed": 0, "timeout": None,
    }


def search(executor: Executor, storage: str | None, name: str, trials: int) -> dict[str, float]:
    start = time.perf_counter()
    result = tune(_job(), executor, n_trials=trials, parallel=2, storage=storage, study_name=name)
    wall = time.perf_counter() - start
    busy = 0.0
    if storage is not None:
        frozen = optuna.load_study(study_name=name, storage=open_storage(storage)).get_trials()
        busy = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in frozen
                   if t.datetime_complete and t.datetime_start)
    nodes = len({t["node"] for t in result.trials})
    return {"wall": wall, "trials_per_s": trials / wall, "busy": busy, "nodes": nodes,
            "overhead_ms": (wall * 2 - busy) / trials * 1000 if busy else float("nan")}


def bench_trials(args: argparse.Namespace) -> None:
    print(f"\n== Optuna trials: {args.trials} per search, 2 workers ({load()})")
    rows: list[tuple[str, dict[str, float]]] = []
    with pg.fresh_schema(pg.postgres_url()) as url:
        storage = storage_for(url)
        with LocalExecutor(workers=2) as local:
            search(local, None, "warm", 4)
            rows.append(("local pool, journal file", search(local, None, "local-journal", args.trials)))
            search(local, storage, "warm-pg", 4)
            rows.append(("local pool, PostgreSQL", search(local, storage, "local-pg", args.trials)))
        if not args.skip_ray:
            import ray

            from modelpilot.executors.ray import RayExecutor
            from modelpilot.testing.raycluster import ray_cluster, wait_for_nodes

            t0 = time.perf_counter()
            with ray_cluster(nodes=2) as cluster:
                ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
                wait_for_nodes(2)
                print(f"two-node Ray cluster up in {time.perf_counter() - t0:.1f} s ({load()})")
                try:
                    ex = RayExecutor(address=cluster.address, workers=2)
                    search(ex, storage, "warm-ray", 4)
                    rows.append(("Ray, 2 nodes, PostgreSQL", search(ex, storage, "ray-pg", args.trials)))
                finally:
                    ray.shutdown()
    print(f"{'where':28} {'wall s':>7} {'trials/s':>9} {'nodes':>6} {'overhead ms/trial':>18}")
    for name, r in rows:
        print(f"{name:28} {r['wall']:7.2f} {r['trials_per_s']:9.2f} {r['nodes']:6.0f} {r['overhead_ms']:18.1f}")
    ray_rows = [r for n, r in rows if n.startswith("Ray")]
    if ray_rows:
        ok = ray_rows[0]["overhead_ms"] < TARGET_OVERHEAD_MS
        print(f"target: Ray per-trial overhead < {TARGET_OVERHEAD_MS:.0f} ms -> "
              f"{ray_rows[0]['overhead_ms']:.1f} ms: {'MET' if ok else 'NOT MET'}")


# ---------------------------------------------------------------------------- serving


def start(tmp: Path, config: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [str(Path(sys.executable).with_name("modelpilot")), "serve", "--config", str(config),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log = open(tmp / f"serve-{workers}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: bool(httpx.get(url + "/healthz").json()["models"].get("bench")), proc,
               f"modelpilot serve --workers {workers}")
    # every worker answers: new connections spread over them; each must have loaded the model
    for _ in range(8 * workers):
        httpx.get(url + "/healthz", headers={"connection": "close"}).raise_for_status()
    return proc, url


def bench_serving(args: argparse.Namespace) -> None:
    print(f"\n== serve --workers 1 vs 2, single-row predicts, concurrency {CONCURRENCY} ({load()})")
    if not have_wrk():
        print(f"wrk not found; this part needs it: {WRK_INSTALL}")
        return
    frame = make_data(20_000, seed=0)
    rows = frame.drop(columns=["churned"]).head(200)
    bodies = [orjson.dumps({"instances": [r]}) for r in rows.to_dict("records")]
    rates: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="mp-bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        config = register_hand_built(tmp, frame).config
        for rep in range(args.repeat):
            for workers in (1, 2):
                proc, url = start(tmp, config, workers)
                try:
                    wrk(url + "/v1/models/bench/predict", bodies, CONCURRENCY, 2)  # warm-up
                    result = wrk(url + "/v1/models/bench/predict", bodies, CONCURRENCY, args.seconds)
                    rates[workers].append(result.rps)
                    if result.errors:
                        print(f"  {result.errors} errors")
                    print(f"repeat {rep + 1}: --workers {workers}: {result.rps:8.0f} req/s, p50 "
                          f"{result.p50:.1f} ms, p99 {result.p99:.1f} ms ({load()})")
                finally:
                    stop(proc)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    speedup = two / one if one else float("nan")
    print(f"median: --workers 1 {one:.0f} req/s, --workers 2 {two:.0f} req/s: {speedup:.2f}x "
          f"(target >= {TARGET_SPEEDUP}x: {'MET' if speedup >= TARGET_SPEEDUP else 'NOT MET'})")


# ---------------------------------------------------------------------------- log


def bench_log(args: argparse.Namespace) -> None:
    from modelpilot.artifacts import open_artifacts
    from modelpilot.serving.predlog import (
        FeedbackBatch,
        PredictionBatch,
        PredictionLogReader,
        PredictionLogWriter,
    )

    print(f"\n== prediction log: {args.log_rows:,} rows ({load()})")
    frame = make_data(args.log_rows, seed=1)
    with tempfile.TemporaryDirectory(prefix="mp-bench-log-") as tmp:
        artifacts = open_artifacts(tmp)
        writer = PredictionLogWriter(artifacts, flush_rows=50_000, flush_interval=3600).start()
        chunk = 1000
        t0 = time.perf_counter()
        for start in range(0, len(frame), chunk):
            part = frame.iloc[start:start + chunk]
            ids = [f"r{i}" for i in range(start, start + len(part))]
            proba = np.random.default_rng(start).random(len(part))
            preds = np.where(proba > 0.5, 1, 0).astype(object)
            feats = {c: part[c].to_numpy() for c in part.columns if c != "churned"}
            for i in range(len(part)):  # one batch per row, as the server logs a single-row predict
                writer.log_predictions(PredictionBatch(
                    model="m", ids=ids[i:i + 1], version=1, predictions=preds[i:i + 1], scores=proba[i:i + 1],
                    probabilities=np.stack([1 - proba[i:i + 1], proba[i:i + 1]], axis=1),
                    features={k: v[i:i + 1] for k, v in feats.items()}))
            writer.log_feedback(FeedbackBatch(model="m", ids=ids, labels=[str(v) for v in part["churned"]]))
        writer.close()
        write_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*.parquet"))
        reader = PredictionLogReader(artifacts, "m")
        t1 = time.perf_counter()
        joined = reader.joined()
        scan_s = time.perf_counter() - t1
    assert len(joined) == args.log_rows and joined["label"].notna().all()
    per_row = size / args.log_rows
    print(f"logged {args.log_rows:,} predictions + labels in {write_s:.1f} s ({args.log_rows / write_s:,.0f} rows/s "
          f"through one writer); {size / 1e6:.1f} MB on disk = {per_row:.0f} bytes per row "
          f"(prediction + label) -> {per_row * 86400 / 1e9:.3f} GB/day per 1 req/s, "
          f"{per_row * 86400 * 1000 / 1e9:.1f} GB/day at 1,000 req/s")
    print(f"joined scan (DuckDB, predictions LEFT JOIN latest label): {scan_s:.2f} s = "
          f"{args.log_rows / scan_s:,.0f} rows/s = {scan_s / (size / 1e9):.1f} s per GB on disk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-trials", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--log-rows", type=int, default=200_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; {load()}")
    if not args.skip_trials:
        bench_trials(args)
    if not args.skip_serve:
        bench_serving(args)
    if args.log_rows > 0:
        bench_log(args)


if __name__ == "__main__":
    main()
