"""Serving benchmark: ``modelpilot serve`` over HTTP against the in-process predict floor,
and (``--compare-mlflow``) against ``mlflow models serve`` for the same model, same run.

Trains a HistGradientBoosting pipeline (4 numeric + 2 categorical features, 20,000 rows,
fixed seed), registers it as the champion of a fresh store, starts ``modelpilot serve``
(one process, prediction log ON) and measures single-row and 100-row requests at
concurrency 1 and 16:

* requests/s and p50/p99 latency from ``wrk`` (one thread, C, epoll, keep-alive
  connections: it leaves the second core to the server; a Python client would take it).
  Without wrk the script falls back to an httpx client and says so. Install wrk with
  ``apt-get install -y wrk`` (macOS: ``brew install wrk``);
* the in-process floor: ``LoadedModel.predict_columns`` on the parsed columns — exactly the
  call the server makes per request, through the verified NumPy fast path
  (``modelpilot.serving.fastpath``) when the cache compiled one, as it does here — and
  the p50 overhead of the server over it. Request parsing and the plain
  ``pipeline.predict_proba(DataFrame)`` are shown beside it for reference.

``--compare-mlflow`` creates (once, cached) ``benchmarks/.venvs/mlflow`` with ``mlflow`` and
this venv's scikit-learn version, fits the same pipeline there from the same Parquet
training file (same code: ``benchmarks/_envs/serving_model.py``), logs it with
``mlflow.sklearn.log_model``, serves it with ``mlflow models serve --env-manager local``
(one worker) and measures it with the same load generator, alternating with modelpilot on
each repeat. Every server started is stopped at the end.

Targets: p50 overhead over the floor < 1 ms at concurrency 1, and >= 10x the single-row
requests/s of ``mlflow models serve``.

Usage::

    .venv/bin/python benchmarks/bench_serving.py [--seconds 10] [--repeat 3] [--compare-mlflow]

``modelpilot serve`` runs one process (it has no ``--workers`` option yet), so every figure
is for one server process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import (  # noqa: E402
    ENVS,
    WRK_INSTALL,
    Load,
    ensure_venv,
    free_port,
    have_wrk,
    stop,
    wait_until,
    wrk,
)
from _envs.serving_model import CATEGORICAL, FEATURES, NUMERIC, make_data, train  # noqa: E402

from modelpilot.artifacts import open_artifacts, save_model  # noqa: E402
from modelpilot.serving.cache import LoadedModel, load_version  # noqa: E402
from modelpilot.store import Store  # noqa: E402

SIGNATURE = [{"name": n, "type": "float"} for n in NUMERIC] + [
    {"name": n, "type": "category"} for n in CATEGORICAL
]
TARGET_OVERHEAD_MS = 1.0
TARGET_RATIO = 10.0
CONCURRENCY = (1, 16)
PREDICT_PATH = "/v1/models/bench/predict"

THREADPOOL_SERVER = """
import sys
import modelpilot.serving.app as app_module
from modelpilot.config import PilotConfig
from modelpilot.serving import run_server
app_module.PREDICT_IN_THREADPOOL = True
run_server(PilotConfig.load(sys.argv[1]), "127.0.0.1", int(sys.argv[2]), log_level="warning")
"""


# ---------------------------------------------------------------------------- setup


def register(tmp: Path, pipe: Any) -> tuple[Path, LoadedModel]:
    """Register ``pipe`` as bench's champion; return pilot.yaml and the model exactly as
    the server's cache loads it (``load_version``: same fast-path compilation)."""
    store = Store.open(f"sqlite:///{tmp / 'store.db'}")
    artifacts = open_artifacts(str(tmp / "artifacts"))
    v = store.register_version(
        "bench", run_id=None, artifact_key=save_model(artifacts, pipe), reference_key=None,
        signature=SIGNATURE, task="classification", classes=[int(c) for c in pipe.classes_],
        metrics={}, lineage={"estimator": "HistGradientBoostingClassifier"},
    )
    store.set_alias("bench", "champion", v.version)
    loaded = load_version(store, artifacts, "bench", v.version)
    store.close()
    config = tmp / "pilot.yaml"
    config.write_text(
        "model: {name: bench, target: churned}\nstore: {url: 'sqlite:///store.db'}\n"
        "artifacts: {url: artifacts}\nserving: {log_flush_rows: 5000, log_flush_interval: 5s}\n"
    )
    return config, loaded


def start_modelpilot(tmp: Path, config: Path, threadpool: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    if threadpool:
        cmd = [sys.executable, "-c", THREADPOOL_SERVER, str(config), str(port)]
    else:
        cmd = [str(Path(sys.executable).with_name("modelpilot")), "serve", "--config", str(config),
               "--host", "127.0.0.1", "--port", str(port)]
    log = open(tmp / "modelpilot-serve.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: bool(httpx.get(url + "/healthz").json()["models"].get("bench")), proc,
               f"modelpilot serve (log: {tmp / 'modelpilot-serve.log'})")
    return proc, url


def start_mlflow(tmp: Path, train_df: pd.DataFrame, check: pd.DataFrame
                 ) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    import sklearn

    python = ensure_venv("mlflow", ["mlflow", f"scikit-learn=={sklearn.__version__}", "pyarrow"])
    work = tmp / "mlflow"
    work.mkdir()
    train_df.to_parquet(work / "train.parquet")
    check.to_parquet(work / "check.parquet")
    print("fitting and logging the same pipeline in the MLflow venv ...", flush=True)
    out = subprocess.run(
        [str(python), str(ENVS / "mlflow_model.py"), str(work / "train.parquet"),
         str(work / "check.parquet"), str(work)],
        check=True, capture_output=True, text=True, cwd=work,
    )
    info = json.loads(out.stdout.strip().splitlines()[-1])
    port = free_port()
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(python.with_name("mlflow")), "models", "serve", "-m", info["model_dir"],
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(url + "/ping").status_code == 200, proc,
               f"mlflow models serve (log: {work / 'serve.log'})")
    return proc, url, info


# ---------------------------------------------------------------------------- measuring


def floors(model: LoadedModel, batches: list[list[dict[str, Any]]], n: int) -> dict[str, float]:
    """p50 ms in-process, for one request of each batch in turn: parsing the body, the
    server's predict call (``predict_columns``), and the plain pipeline on a DataFrame."""
    bodies = [json.dumps({"instances": b}).encode() for b in batches]
    parsed = [model.schema.parse(b, max_instances=10_000).columns for b in bodies]
    timings: dict[str, list[float]] = defaultdict(list)
    steps: dict[str, Callable[[int], Any]] = {
        "parse": lambda i: model.schema.parse(bodies[i], max_instances=10_000),
        "predict": lambda i: model.predict_columns(parsed[i]),
        "pipeline": lambda i: model.pipeline.predict_proba(pd.DataFrame(parsed[i], copy=False)),
    }
    for name, step in steps.items():
        for k in range(n):
            i = k % len(bodies)
            t0 = time.perf_counter()
            step(i)
            timings[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(v) for name, v in timings.items()}


async def _httpx_load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> Load:
    """Fallback load generator (a Python client steals CPU from the server: wrk is better)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code != 200
                i += concurrency

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - start
    p50, p99 = (float(np.percentile(latencies, q)) for q in (50, 99))
    return Load("httpx", len(latencies), len(latencies) / elapsed, p50, p99, errors)


def load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> Load:
    if have_wrk():
        return wrk(url, bodies, concurrency, seconds)
    return asyncio.run(_httpx_load(url, bodies, concurrency, seconds))


def spread(values: list[float], fmt: str = ".0f") -> str:
    mid = format(statistics.median(values), fmt)
    if len(values) == 1:
        return mid
    return f"{mid} [{format(min(values), fmt)}-{format(max(values), fmt)}]"


# ---------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--repeat", type=int, default=1, help="measure every scenario N times "
                    "(medians and [min-max] ranges are printed)")
    ap.add_argument("--compare-mlflow", action="store_true",
                    help="also serve the same model with `mlflow models serve` (own venv)")
    ap.add_argument("--threadpool", action="store_true",
                    help="run modelpilot with PREDICT_IN_THREADPOOL = True")
    args = ap.parse_args()

    if not have_wrk():
        print(f"wrk not found: falling back to an httpx client on this machine, which competes "
              f"with the server for CPU. Install wrk for fair figures: {WRK_INSTALL}")
    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-serving-"))
    df = make_data(20_000)
    pipe = train(df)
    config, model = register(tmp, pipe)
    rows = df[FEATURES].sample(2000, random_state=1)
    records = rows.to_dict(orient="records")
    scenarios = {"1 row": [[r] for r in records[:500]],
                 "100 rows": [records[i : i + 100] for i in range(0, 2000, 100)]}

    threadpool_limits(limits=1)  # what the server process sets
    floor = {label: floors(model, batches, 2000 if label == "1 row" else 300)
             for label, batches in scenarios.items()}

    servers: dict[str, tuple[str, Callable[[list[dict[str, Any]]], bytes]]] = {}
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[tuple[str, str, int], list[Load]] = defaultdict(list)
    mlflow_info: dict[str, Any] = {}
    check_rows = rows.head(20)
    try:
        proc, url = start_modelpilot(tmp, config, args.threadpool)
        procs.append(proc)
        servers["modelpilot"] = (url + PREDICT_PATH, lambda b: json.dumps({"instances": b}).encode())
        if args.compare_mlflow:
            proc, url, mlflow_info = start_mlflow(tmp, df, check_rows)
            procs.append(proc)
            servers["mlflow"] = (url + "/invocations",
                                 lambda b: json.dumps({"dataframe_records": b}).encode())
        answers = check_answers(servers, check_rows, pipe, mlflow_info)
        for url, encode in servers.values():  # warm-up: connections, lazy imports
            load(url, [encode(b) for b in scenarios["1 row"]], 16, 2)
            load(url, [encode(b) for b in scenarios["100 rows"]], 16, 1)
        for rep in range(args.repeat):
            for label, batches in scenarios.items():
                for conc in CONCURRENCY:
                    for name, (url, encode) in servers.items():
                        got = load(url, [encode(b) for b in batches], conc, args.seconds)
                        results[(name, label, conc)].append(got)
                        print(f"  [{rep + 1}/{args.repeat}] {name:10s} {label:8s} c={conc:<2d} "
                              f"{got.rps:8.0f} req/s  p50 {got.p50:6.2f} ms  p99 {got.p99:7.2f} ms"
                              f"  errors {got.errors}", flush=True)
    finally:
        for proc in procs:
            stop(proc)

    report(args, model, floor, results, answers, mlflow_info)
    shutil.rmtree(tmp, ignore_errors=True)  # kept when something failed: its logs are there


def check_answers(servers: dict[str, Any], check: pd.DataFrame, pipe: Any,
                  mlflow_info: dict[str, Any]) -> dict[str, float]:
    """Max |probability difference| of each server (and of MLflow's own fit) vs our pipeline."""
    expected = pipe.predict_proba(check)
    batch = check.to_dict(orient="records")
    out: dict[str, float] = {}
    for name, (url, encode) in servers.items():
        body = httpx.post(url, content=encode(batch), headers={"content-type": "application/json"},
                          timeout=30).json()
        proba = body["probabilities"] if name == "modelpilot" else body["predictions"]
        out[name] = float(np.abs(np.asarray(proba, dtype=float) - expected).max())
    if mlflow_info:
        out["mlflow fit"] = float(np.abs(np.asarray(mlflow_info["proba"]) - expected).max())
    return out


def report(args: argparse.Namespace, model: LoadedModel, floor: dict[str, dict[str, float]],
           results: dict[tuple[str, str, int], list[Load]], answers: dict[str, float],
           mlflow_info: dict[str, Any]) -> None:
    tool = next(iter(results.values()))[0].tool
    mode = "threadpool" if args.threadpool else "event loop"
    print(f"\nserving benchmark: HistGradientBoosting, 6 features, ONE server process, prediction "
          f"log on, predict on the {mode}; load: {tool} "
          f"({'1 thread' if tool == 'wrk' else 'Python client, same machine'}), "
          f"{args.seconds:.0f} s x {args.repeat}; {os.cpu_count()} CPUs")
    if mlflow_info:
        print(f"mlflow {mlflow_info['mlflow']} (scikit-learn {mlflow_info['sklearn']}), "
              f"`mlflow models serve --env-manager local -w 1`")
    print("answers vs the local pipeline (max |d proba|): "
          + ", ".join(f"{k} {v:.1e}" for k, v in answers.items()))
    print(f"\n{'server':10s} {'request':>8s} {'conc':>4s} {'req/s [min-max]':>20s} "
          f"{'p50 ms [min-max]':>22s} {'p99 ms':>7s} {'errors':>6s}")
    for (name, label, conc), loads in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0] != "modelpilot")):
        print(f"{name:10s} {label:>8s} {conc:4d} {spread([x.rps for x in loads]):>20s} "
              f"{spread([x.p50 for x in loads], '.2f'):>22s} "
              f"{statistics.median(x.p99 for x in loads):7.2f} {sum(x.errors for x in loads):6d}")

    path = "the NumPy fast path (fastpath.py)" if model.fast is not None else "the plain pipeline"
    print(f"\nin-process floor, p50 ms (predict = LoadedModel.predict_columns, the server's call, "
          f"here {path}):")
    print(f"{'request':>8s} {'parse':>7s} {'predict':>8s} {'pipeline':>9s} {'HTTP p50 c=1':>13s} "
          f"{'overhead':>9s}")
    overhead: dict[str, float] = {}
    for label, f in floor.items():
        http = statistics.median(x.p50 for x in results[("modelpilot", label, 1)])
        overhead[label] = http - f["predict"]
        print(f"{label:>8s} {f['parse']:7.3f} {f['predict']:8.3f} {f['pipeline']:9.3f} "
              f"{http:13.3f} {overhead[label]:9.3f}")
    ok = overhead["1 row"] < TARGET_OVERHEAD_MS
    print(f"\np50 overhead over the predict floor, 1 row, concurrency 1: {overhead['1 row']:.2f} ms "
          f"(HTTP + parse + log + serialise; target < {TARGET_OVERHEAD_MS:.0f} ms) -> "
          f"{'PASS' if ok else 'FAIL'}")
    if mlflow_info:
        for label in ("1 row", "100 rows"):
            for conc in CONCURRENCY:
                mp = statistics.median(x.rps for x in results[("modelpilot", label, conc)])
                ml = statistics.median(x.rps for x in results[("mlflow", label, conc)])
                verdict = ("PASS" if mp / ml >= TARGET_RATIO else "FAIL") if label == "1 row" else "info"
                print(f"modelpilot / mlflow, {label:8s} c={conc:<2d}: {mp:6.0f} / {ml:5.0f} req/s = "
                      f"{mp / ml:5.1f}x (target >= {TARGET_RATIO:.0f}x) -> {verdict}")
    else:
        print("MLflow not measured: add --compare-mlflow (builds benchmarks/.venvs/mlflow once).")
    print("one server process: `modelpilot serve` has no --workers option yet.")


if __name__ == "__main__":
    main()
