"""Serving benchmark: ``modelpilot serve`` over HTTP for every model the product trains by
default, against the in-process predict floor and against ``mlflow models serve``.

The models, each registered in its own fresh store and served by its own ``modelpilot
serve`` process (one uvicorn worker, prediction log ON), one after the other:

* ``init`` — exactly what ``modelpilot init && modelpilot train`` produces: the example
  config and data, trained with the config's tuning (8 trials);
* ``classification`` / ``regression`` — the product's own default pipeline
  (``training.build_pipeline`` + the default HistGradientBoosting estimator, default
  parameters) trained with ``train`` on the benchmark data (4 numeric + 2 categorical
  features, 20,000 rows, fixed seed); a regression target is derived from the same rows;
* ``hand-built`` — a simpler hand-built ``ColumnTransformer → HistGradientBoosting`` (no
  imputer on categories, no casts; ``benchmarks/_envs/serving_model.py``): the pipeline the
  MLflow comparison serves on both sides.

Each server answers from the runtime its model cache chose (``onnxruntime`` when the
version has a graph that passed its check, else the compiled fast path, else
scikit-learn: docs/serving.md); the report names it per model.

Measured per model: single-row and 100-row requests at concurrency 1 and 16 — requests/s
and p50/p99 latency from ``wrk`` (one thread, C, epoll, keep-alive connections: it leaves
the second core to the server). Without wrk the script falls back to an httpx client and
says so. Install wrk with ``apt-get install -y wrk`` (macOS: ``brew install wrk``). The
in-process floor is ``LoadedModel.predict_columns`` on the parsed columns — exactly the
call the server makes per request.

``--compare-mlflow`` creates (once, cached) ``benchmarks/.venvs/mlflow`` with ``mlflow`` and
this venv's scikit-learn version, fits the hand-built pipeline there from the same Parquet
training file (``benchmarks/_envs/serving_model.py``), logs it with
``mlflow.sklearn.log_model``, serves it with ``mlflow models serve --env-manager local``
(one worker) and measures it with the same load generator. Without it, the MLflow
single-row figure is ``--mlflow-rps`` (default 75 req/s, the top of the 53-75 req/s
measured on the 2-core development machine; say so when quoting).

Targets: every model >= 10x MLflow's single-row requests/s at concurrency 1 and 16; p50
overhead over the floor < 1 ms at concurrency 1. Requests/s depend on how much CPU the
server gets, so the server process's CPU time per request (psutil) is printed too, with
the requests one CPU-second serves: the figure to compare when the machine is shared.

Usage::

    .venv/bin/python benchmarks/bench_serving.py [--seconds 10] [--repeat 3] [--compare-mlflow]
        [--models init classification regression hand-built]

Every server started is stopped at the end. Each figure is for one server process.
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
from dataclasses import dataclass
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
from _envs.serving_model import CATEGORICAL, FEATURES, NUMERIC, TARGET, make_data, train  # noqa: E402

from modelpilot.artifacts import open_artifacts, save_model  # noqa: E402
from modelpilot.serving.cache import LoadedModel, load_version  # noqa: E402
from modelpilot.store import Store  # noqa: E402

SIGNATURE = [{"name": n, "type": "float"} for n in NUMERIC] + [
    {"name": n, "type": "category"} for n in CATEGORICAL
]
TARGET_OVERHEAD_MS = 1.0
TARGET_RATIO = 10.0
CONCURRENCY = (1, 16)
MLFLOW_REFERENCE_RPS = 75.0  # top of the 53-75 req/s measured on the 2-core dev machine

THREADPOOL_SERVER = """
import sys
import modelpilot.serving.app as app_module
from modelpilot.config import PilotConfig
from modelpilot.serving import run_server
app_module.PREDICT_IN_THREADPOOL = True
run_server(PilotConfig.load(sys.argv[1]), "127.0.0.1", int(sys.argv[2]), log_level="warning")
"""


# ---------------------------------------------------------------------------- setup

MODELS = ("init", "classification", "regression", "hand-built")
CONFIG_TAIL = ("store: {url: 'sqlite:///store.db'}\nartifacts: {url: artifacts}\n"
               "serving: {log_flush_rows: 5000, log_flush_interval: 5s}\n")


@dataclass
class Bench:
    """One model to serve: its folder and config, the model as the server loads it, rows."""

    label: str
    name: str  # the registry name (the URL path)
    folder: Path
    config: Path
    loaded: LoadedModel
    rows: pd.DataFrame  # request rows (signature columns)

    @property
    def predict_path(self) -> str:
        return f"/v1/models/{self.name}/predict"


def _loaded(folder: Path, name: str) -> LoadedModel:
    """The champion exactly as the server's cache loads it (``load_version``)."""
    store = Store.open(f"sqlite:///{folder / 'store.db'}")
    try:
        artifacts = open_artifacts(str(folder / "artifacts"))
        version = store.get_alias(name, "champion")
        if version is None:
            raise SystemExit(f"{name}: training produced no champion (see {folder})")
        return load_version(store, artifacts, name, int(version))
    finally:
        store.close()


def register_hand_built(folder: Path, df: pd.DataFrame) -> Bench:
    """Register the hand-built pipeline (the MLflow comparison's) as bench's champion."""
    pipe = train(df)
    store = Store.open(f"sqlite:///{folder / 'store.db'}")
    artifacts = open_artifacts(str(folder / "artifacts"))
    v = store.register_version(
        "bench", run_id=None, artifact_key=save_model(artifacts, pipe), reference_key=None,
        signature=SIGNATURE, task="classification", classes=[int(c) for c in pipe.classes_],
        metrics={}, lineage={"estimator": "HistGradientBoostingClassifier"},
    )
    store.set_alias("bench", "champion", v.version)
    store.close()
    config = folder / "pilot.yaml"
    config.write_text("model: {name: bench, target: churned}\n" + CONFIG_TAIL)
    return Bench("hand-built", "bench", folder, config, _loaded(folder, "bench"), df[FEATURES])


def train_default(folder: Path, df: pd.DataFrame, task: str) -> Bench:
    """``modelpilot train`` with every default (estimator, params, preprocessing), no tuning."""
    from modelpilot import Pilot

    data = df.drop(columns=[TARGET]).assign(spend=spend(df)) if task == "regression" else df
    target = "spend" if task == "regression" else TARGET
    name = f"bench_{task}"
    config = folder / "pilot.yaml"
    config.write_text(f"model: {{name: {name}, target: {target}, task: {task}, seed: 0}}\n"
                      "tuning: {enabled: false}\n" + CONFIG_TAIL)
    pilot = Pilot.from_config(config)
    try:
        pilot.train(data=data)
    finally:
        pilot.close()
    loaded = _loaded(folder, name)
    return Bench(task, name, folder, config, loaded, df[list(loaded.schema.names)])


def spend(df: pd.DataFrame) -> pd.Series:
    """A regression target from the benchmark rows (monthly spend)."""
    noise = np.random.default_rng(1).normal(0, 5, len(df))
    return df["income"] / 1000 + 8 * (df["plan"] == "max") + df["calls"] * 2 + noise


def train_init(folder: Path) -> Bench:
    """``modelpilot init && modelpilot train``: the example config and data, as written."""
    from modelpilot import Pilot
    from modelpilot._init_template import write_example

    write_example(folder)
    config = folder / "pilot.yaml"
    pilot = Pilot.from_config(config)
    try:
        pilot.train()
        name = pilot.cfg.model.name
        store_url, artifacts_url = pilot.cfg.store_url, pilot.cfg.artifacts_url
    finally:
        pilot.close()
    store = Store.open(store_url)
    try:
        version = int(store.get_alias(name, "champion") or 0)
        loaded = load_version(store, open_artifacts(artifacts_url), name, version)
    finally:
        store.close()
    data = pd.read_parquet(folder / "data" / "customers.parquet")
    return Bench("init", name, folder, config, loaded, data[list(loaded.schema.names)])


def start_modelpilot(bench: Bench, threadpool: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    if threadpool:
        cmd = [sys.executable, "-c", THREADPOOL_SERVER, str(bench.config), str(port)]
    else:
        cmd = [str(Path(sys.executable).with_name("modelpilot")), "serve", "--config", str(bench.config),
               "--host", "127.0.0.1", "--port", str(port)]
    log = open(bench.folder / "modelpilot-serve.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=bench.folder, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: bool(httpx.get(url + "/healthz").json()["models"].get(bench.name)), proc,
               f"modelpilot serve (log: {bench.folder / 'modelpilot-serve.log'})")
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
    server's predict call (``predict_columns``), and the plain pipeline on a DataFrame
    (``LoadedModel.predict``: scikit-learn, whatever the runtime)."""
    bodies = [json.dumps({"instances": b}).encode() for b in batches]
    parsed = [model.schema.parse(b, max_instances=10_000).columns for b in bodies]
    timings: dict[str, list[float]] = defaultdict(list)
    steps: dict[str, Callable[[int], Any]] = {
        "parse": lambda i: model.schema.parse(bodies[i], max_instances=10_000),
        "predict": lambda i: model.predict_columns(parsed[i]),
        "pipeline": lambda i: model.predict(pd.DataFrame(parsed[i], copy=False)),
    }
    for name, step in steps.items():
        for k in range(n if name != "pipeline" else max(20, n // 10)):  # the slow reference: fewer
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


def prepare(label: str, folder: Path, df: pd.DataFrame) -> Bench:
    folder.mkdir(parents=True)
    print(f"training and registering {label!r} ...", flush=True)
    t0 = time.perf_counter()
    if label == "init":
        bench = train_init(folder)
    elif label == "hand-built":
        bench = register_hand_built(folder, df)
    else:
        bench = train_default(folder, df, label)
    print(f"  {label}: {time.perf_counter() - t0:.0f} s; served by {bench.loaded.runtime}", flush=True)
    return bench


def scenarios(bench: Bench) -> dict[str, list[list[dict[str, Any]]]]:
    rows = bench.rows.sample(min(2000, len(bench.rows)), random_state=1)
    records = json.loads(rows.to_json(orient="records"))  # NaN -> null, like a JSON client
    return {"1 row": [[r] for r in records[:500]],
            "100 rows": [records[i : i + 100] for i in range(0, len(records) - 99, 100)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--repeat", type=int, default=1, help="measure every scenario N times "
                    "(medians and [min-max] ranges are printed)")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models to serve")
    ap.add_argument("--compare-mlflow", action="store_true",
                    help="also serve the hand-built model with `mlflow models serve` (own venv)")
    ap.add_argument("--mlflow-rps", type=float, default=MLFLOW_REFERENCE_RPS,
                    help="MLflow's single-row req/s to compare with when it is not measured")
    ap.add_argument("--threadpool", action="store_true",
                    help="run modelpilot with PREDICT_IN_THREADPOOL = True")
    args = ap.parse_args()

    if not have_wrk():
        print(f"wrk not found: falling back to an httpx client on this machine, which competes "
              f"with the server for CPU. Install wrk for fair figures: {WRK_INSTALL}")
    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-serving-"))
    df = make_data(20_000)
    benches = [prepare(label, tmp / label, df) for label in args.models]

    threadpool_limits(limits=1)  # what the server process sets
    floor = {b.label: {label: floors(b.loaded, batches, 2000 if label == "1 row" else 300)
                       for label, batches in scenarios(b).items()} for b in benches}
    results: dict[tuple[str, str, int], list[Load]] = defaultdict(list)
    cpu_ms: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    answers: dict[str, float] = {}
    mlflow_info: dict[str, Any] = {}
    served: dict[str, str] = {}
    for bench in benches:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            proc, url = start_modelpilot(bench, args.threadpool)
            procs.append(proc)
            served[bench.label] = httpx.get(f"{url}/v1/models/{bench.name}").json()["serving"]["runtime"]
            servers: dict[str, tuple[str, Callable[[list[dict[str, Any]]], bytes]]] = {
                bench.label: (url + bench.predict_path, lambda b: json.dumps({"instances": b}).encode())}
            if args.compare_mlflow and bench.label == "hand-built":
                proc, ml_url, mlflow_info = start_mlflow(tmp, df, df[FEATURES].head(20))
                procs.append(proc)
                servers["mlflow"] = (ml_url + "/invocations",
                                     lambda b: json.dumps({"dataframe_records": b}).encode())
            answers.update(check_answers(servers, bench, mlflow_info))
            batches = scenarios(bench)
            for target, encode in servers.values():  # warm-up: connections, lazy imports
                load(target, [encode(b) for b in batches["1 row"]], 16, 2)
                load(target, [encode(b) for b in batches["100 rows"]], 16, 1)
            for rep in range(args.repeat):
                for label, rows in batches.items():
                    for conc in CONCURRENCY:
                        for name, (target, encode) in servers.items():
                            pid = procs[0].pid if name == bench.label else procs[-1].pid
                            cpu0 = server_cpu(pid)
                            got = load(target, [encode(b) for b in rows], conc, args.seconds)
                            results[(name, label, conc)].append(got)
                            cpu_ms[(name, label, conc)].append(
                                (server_cpu(pid) - cpu0) * 1000 / max(1, got.requests))
                            print(f"  [{rep + 1}/{args.repeat}] {name:14s} {label:8s} c={conc:<2d} "
                                  f"{got.rps:8.0f} req/s  p50 {got.p50:6.2f} ms  p99 {got.p99:7.2f} ms"
                                  f"  errors {got.errors}  server CPU {cpu_ms[(name, label, conc)][-1]:.2f} ms/req",
                                  flush=True)
        finally:
            for proc in procs:
                stop(proc)

    report(args, benches, served, floor, results, cpu_ms, answers, mlflow_info)
    shutil.rmtree(tmp, ignore_errors=True)  # kept when something failed: its logs are there


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process and its children have used so far."""
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def check_answers(servers: dict[str, Any], bench: Bench, mlflow_info: dict[str, Any]) -> dict[str, float]:
    """Max |difference| of each server's answers (probabilities, or predictions for a
    regressor) from the model's own scikit-learn pipeline on 20 rows."""
    check = bench.rows.head(20)
    pipe = bench.loaded.pipeline
    classifier = bench.loaded.classes is not None
    expected = pipe.predict_proba(check) if classifier else pipe.predict(check)
    batch = json.loads(check.to_json(orient="records"))
    out: dict[str, float] = {}
    for name, (url, encode) in servers.items():
        body = httpx.post(url, content=encode(batch), headers={"content-type": "application/json"},
                          timeout=30).json()
        if name == "mlflow":
            got = body["predictions"]
        else:
            got = body["probabilities"] if classifier else body["predictions"]
        out[name] = float(np.abs(np.asarray(got, dtype=float) - expected).max())
    if mlflow_info:
        out["mlflow fit"] = float(np.abs(np.asarray(mlflow_info["proba"]) - expected).max())
    return out


def report(args: argparse.Namespace, benches: list[Bench], served: dict[str, str],
           floor: dict[str, dict[str, dict[str, float]]], results: dict[tuple[str, str, int], list[Load]],
           cpu_ms: dict[tuple[str, str, int], list[float]], answers: dict[str, float],
           mlflow_info: dict[str, Any]) -> None:
    tool = next(iter(results.values()))[0].tool
    mode = "threadpool" if args.threadpool else "event loop"
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nserving benchmark: ONE server process per model, prediction log on, predict on the "
          f"{mode}; load: {tool} ({'1 thread' if tool == 'wrk' else 'Python client, same machine'}), "
          f"{args.seconds:.0f} s x {args.repeat}; {os.cpu_count()} CPUs; load average now {load_avg}")
    for b in benches:
        print(f"  {b.label:14s} model {b.name!r}, {b.loaded.record.task}, "
              f"{type(b.loaded.pipeline[-1]).__name__}, {len(b.loaded.schema.names)} features; "
              f"runtime {served.get(b.label, '?')}")
    if mlflow_info:
        print(f"mlflow {mlflow_info['mlflow']} (scikit-learn {mlflow_info['sklearn']}), "
              f"`mlflow models serve --env-manager local -w 1`, serving the hand-built model")
    print("answers vs the local pipeline (max |d|): " + ", ".join(f"{k} {v:.1e}" for k, v in answers.items()))
    print(f"\n{'server':14s} {'request':>8s} {'conc':>4s} {'req/s [min-max]':>20s} "
          f"{'p50 ms [min-max]':>22s} {'p99 ms':>7s} {'errors':>6s} {'CPU ms/req':>10s} {'req/CPU-s':>9s}")
    for (name, label, conc), loads in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        cpu = statistics.median(cpu_ms[(name, label, conc)])
        print(f"{name:14s} {label:>8s} {conc:4d} {spread([x.rps for x in loads]):>20s} "
              f"{spread([x.p50 for x in loads], '.2f'):>22s} "
              f"{statistics.median(x.p99 for x in loads):7.2f} {sum(x.errors for x in loads):6d} "
              f"{cpu:10.3f} {1000 / cpu if cpu > 0 else float('inf'):9.0f}")
    print("(CPU ms/req: the server process's CPU time per request, measured with psutil; "
          "req/CPU-s = 1000 / it: what one core does when the server gets all of it)")

    print("\nin-process floor, p50 ms (predict = LoadedModel.predict_columns, the server's call):")
    print(f"{'model':14s} {'request':>8s} {'parse':>7s} {'predict':>8s} {'pipeline':>9s} "
          f"{'HTTP p50 c=1':>13s} {'overhead':>9s}")
    for b in benches:
        for label, f in floor[b.label].items():
            http = statistics.median(x.p50 for x in results[(b.label, label, 1)])
            verdict = ""
            if label == "1 row":
                verdict = " PASS" if http - f["predict"] < TARGET_OVERHEAD_MS else " FAIL"
            print(f"{b.label:14s} {label:>8s} {f['parse']:7.3f} {f['predict']:8.3f} {f['pipeline']:9.3f} "
                  f"{http:13.3f} {http - f['predict']:9.3f}{verdict}")
    print(f"(target: p50 overhead over the predict floor < {TARGET_OVERHEAD_MS:.0f} ms for one row at "
          "concurrency 1)")

    measured = bool(mlflow_info)
    print(f"\nsingle-row requests/s against MLflow ({'measured here' if measured else f'{args.mlflow_rps:.0f} req/s reference, not measured in this run'}); "
          f"target >= {TARGET_RATIO:.0f}x:")
    for b in benches:
        for conc in CONCURRENCY:
            mp = statistics.median(x.rps for x in results[(b.label, "1 row", conc)])
            ml = (statistics.median(x.rps for x in results[("mlflow", "1 row", conc)])
                  if measured else args.mlflow_rps)
            cpu = statistics.median(cpu_ms[(b.label, "1 row", conc)])
            capacity = 1000 / cpu if cpu > 0 else float("inf")
            verdict = "PASS" if mp / ml >= TARGET_RATIO else "FAIL"
            print(f"  {b.label:14s} ({served.get(b.label, '?'):11s}) c={conc:<2d}: measured {mp:6.0f} / {ml:5.0f} "
                  f"req/s = {mp / ml:5.1f}x -> {verdict}; per CPU-second of the server {capacity:6.0f} "
                  f"req = {capacity / ml:5.1f}x")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs (measured req/s fall with it; CPU per request does not)")


if __name__ == "__main__":
    main()
