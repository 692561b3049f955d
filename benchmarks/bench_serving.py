"""Serving benchmark: HTTP requests/s and latency against the in-process predict floor.

Starts ``modelpilot``'s server (uvicorn, in a subprocess, prediction log ON) for a
HistGradientBoosting pipeline trained on generated data, then measures, for single-row
and 100-row requests at concurrency 1 and 16:

* requests/s and p50/p99 latency seen by an httpx client on the same machine;
* the in-process floor: building the DataFrame the server builds + ``pipeline.predict``;
* the p50 overhead of the server over that floor.

Targets: p50 overhead < 1 ms at concurrency 1, and >= 1500 single-row requests/s
(10x MLflow's ~150 req/s for ``mlflow models serve`` on this kind of machine).

Usage::

    .venv/bin/python benchmarks/bench_serving.py [--requests 2000] [--seconds 10] [--threadpool]

MLflow is not a dependency. To measure it yourself, in a separate venv::

    python -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow scikit-learn pandas
    # log the same pipeline with mlflow.sklearn.log_model(...), then
    /tmp/mlflow-venv/bin/mlflow models serve -m runs:/<run_id>/model -p 5001 --env-manager local
    # and point this script's client at it: POST /invocations {"dataframe_records": [...]}
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from modelpilot.artifacts import open_artifacts, save_model
from modelpilot.serving.fastpath import compile_pipeline
from modelpilot.serving.schema import RequestSchema
from modelpilot.store import Store

NUMERIC = ["age", "income", "tenure", "calls"]
CATEGORICAL = ["plan", "region"]
SIGNATURE = [{"name": n, "type": "float"} for n in NUMERIC] + [
    {"name": n, "type": "category"} for n in CATEGORICAL
]
TARGET_OVERHEAD_MS = 1.0
TARGET_RPS = 1500.0

SERVER = """
import sys
import modelpilot.serving.app as app_module
from modelpilot.config import PilotConfig
from modelpilot.serving import run_server
app_module.PREDICT_IN_THREADPOOL = sys.argv[3] == "1"
run_server(PilotConfig.load(sys.argv[1]), "127.0.0.1", int(sys.argv[2]), log_level="warning")
"""


def make_data(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n).round(1),
            "income": rng.normal(50_000, 15_000, n).round(0),
            "tenure": rng.integers(0, 120, n).astype(float),
            "calls": rng.poisson(3, n).astype(float),
            "plan": rng.choice(["basic", "pro", "max"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    logit = (df["age"] - 45) / 10 + (df["plan"] == "basic") * 1.5 - df["tenure"] / 60 + df["calls"] / 4
    df["churned"] = (logit + rng.normal(0, 1, n) > 0).astype(int)
    return df


def train(df: pd.DataFrame) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(), NUMERIC),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                   encoded_missing_value=-1), CATEGORICAL),
        ]
    )
    pipe = Pipeline([("pre", pre), ("model", HistGradientBoostingClassifier(max_iter=100))])
    return pipe.fit(df[NUMERIC + CATEGORICAL], df["churned"])


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df[NUMERIC + CATEGORICAL].to_dict(orient="records")  # type: ignore[no-any-return]


def floor_ms(pipe: Pipeline, batches: list[list[dict[str, Any]]], n: int,
             fast: Any = None) -> list[float]:
    """In-process: the server's column building + ONE DataFrame + pipeline.predict
    (or, with ``fast``, the server's verified fast path instead of the DataFrame)."""
    schema = RequestSchema(SIGNATURE)
    out = []
    for i in range(n):
        rows = batches[i % len(batches)]
        t0 = time.perf_counter()
        if fast is None:
            pipe.predict(pd.DataFrame(schema.columns(rows), copy=False))
        else:
            fast(schema.columns(rows))
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def load(url: str, bodies: list[dict[str, Any]], concurrency: int, n: int,
               seconds: float) -> tuple[list[float], float, int]:
    """Send ``n`` requests (or until ``seconds``) with ``concurrency`` in flight."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                r = await client.post("/v1/models/bench/predict", json=bodies[i % len(bodies)])
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code != 200

        # warm-up (connections, lazy imports)
        for b in bodies[:20]:
            await client.post("/v1/models/bench/predict", json=b)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, len(latencies) / elapsed, errors


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per scenario (cap)")
    ap.add_argument("--seconds", type=float, default=10.0, help="time cap per scenario")
    ap.add_argument("--threadpool", action="store_true", help="predict in the threadpool")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    df = make_data(20_000)
    pipe = train(df)
    store = Store.open(f"sqlite:///{tmp / 'store.db'}")
    artifacts = open_artifacts(str(tmp / "artifacts"))
    v = store.register_version(
        "bench", run_id=None, artifact_key=save_model(artifacts, pipe), reference_key=None,
        signature=SIGNATURE, task="classification", classes=[int(c) for c in pipe.classes_],
        metrics={}, lineage={"estimator": "HistGradientBoostingClassifier"},
    )
    store.set_alias("bench", "champion", v.version)
    store.close()
    (tmp / "pilot.yaml").write_text(
        "model: {name: bench, target: churned}\nstore: {url: 'sqlite:///store.db'}\n"
        "artifacts: {url: artifacts}\nserving: {log_flush_rows: 5000, log_flush_interval: 5s}\n"
    )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp / "pilot.yaml"), str(port),
         "1" if args.threadpool else "0"], env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz").json()["models"].get("bench"):
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)

        rows = records(df.sample(2000, random_state=1))
        singles = [[r] for r in rows[:500]]
        hundreds = [rows[i : i + 100] for i in range(0, 2000, 100)]
        results = []
        threadpool_limits(limits=1)  # the same thread setting as the server process
        schema = RequestSchema(SIGNATURE)
        fast = compile_pipeline(pipe, schema.names, schema.columns(rows[:50]), proba=True)
        fast_floors = {}
        for label, batches in (("1 row", singles), ("100 rows", hundreds)):
            fl = floor_ms(pipe, batches, min(args.requests, 1000))
            fast_floors[label] = statistics.median(floor_ms(pipe, batches, min(args.requests, 1000), fast))
            for conc in (1, 16):
                bodies = [{"instances": b} for b in batches]
                lat, rps, errors = asyncio.run(load(url, bodies, conc, args.requests, args.seconds))
                results.append((label, conc, rps, pct(lat, 50), pct(lat, 99), statistics.median(fl), errors))
    finally:
        proc.terminate()
        proc.wait(30)

    mode = "threadpool" if args.threadpool else "event loop"
    print(f"\nmodelpilot serving benchmark (HistGradientBoosting, 6 features, logging on, predict on the {mode}, {os.cpu_count()} CPUs)")
    print("floor = in-process DataFrame + pipeline.predict; fast floor = the server's verified "
          "NumPy fast path (fastpath.py); overheads are HTTP p50 minus each")
    print(f"{'request':>9} {'conc':>4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'floor':>7} "
          f"{'fast floor':>10} {'ovh/floor':>9} {'ovh/fast':>8} {'errors':>6}")
    for label, conc, rps, p50, p99, fl, errors in results:
        ff = fast_floors[label]
        print(f"{label:>9} {conc:>4} {rps:8.0f} {p50:7.2f} {p99:7.2f} {fl:7.2f} {ff:10.2f} "
              f"{p50 - fl:9.2f} {p50 - ff:8.2f} {errors:6d}")
    single_c1 = results[0]
    best_single_rps = max(r[2] for r in results if r[0] == "1 row")
    overhead = single_c1[3] - single_c1[5]
    print(f"\np50 overhead over the fast-path floor at concurrency 1 (1 row): "
          f"{single_c1[3] - fast_floors['1 row']:.2f} ms (HTTP + parse + log + serialise)")
    print(f"p50 overhead over the in-process pipeline floor at concurrency 1 (1 row): {overhead:.2f} ms "
          f"(target < {TARGET_OVERHEAD_MS} ms) -> {'PASS' if overhead < TARGET_OVERHEAD_MS else 'FAIL'}")
    print(f"single-row throughput: {best_single_rps:.0f} req/s (target >= {TARGET_RPS:.0f}, 10x MLflow's "
          f"~150) -> {'PASS' if best_single_rps >= TARGET_RPS else 'FAIL'}")
    print("MLflow is not installed here; to measure it: pip install mlflow in a separate venv, "
          "then `mlflow models serve -m <model uri> --env-manager local` (see this file's docstring).")


if __name__ == "__main__":
    main()
