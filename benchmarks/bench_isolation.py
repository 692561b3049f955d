"""Isolation benchmark: one heavy client sending 10,000-instance batches must not starve
light single-row clients.

Trains the serving benchmark's model (``_envs/serving_model.py``: HistGradientBoosting,
4 numeric + 2 categorical features), registers it, and starts ``modelpilot serve`` (one
process, prediction log on) twice:

* ``process lane`` — the default: bodies over ``serving.offload_bytes`` are parsed,
  predicted and serialised by a lane process (``serving/isolation.py``);
* ``thread lane`` — ``serving.batch_lane: thread``: the same on a thread of the server
  process (it shares the GIL with the event loop);
* ``event loop`` — ``offload_bytes`` set beyond any body, so every request runs on the
  event loop (how the server worked before the lane; shown for comparison).

For each, the light clients (``--light`` asyncio clients, each sending one single-row
request every ``--interval`` seconds) run alone for ``--seconds`` (unloaded), then again
while a heavy client in another process sends 10,000-instance batches back to back
(loaded). Printed: the light clients' p50/p99 latency and requests/s, the heavy
client's batches and rows per second, and the CPU the server process itself (not its lane
processes) used while loaded — the time taken from the event loop's process, which other
jobs on the machine do not inflate the way they inflate latencies.

Target: with the lane (the default, processes), the light clients' p99 under load stays
below 2x its unloaded value.

Usage::

    .venv/bin/python benchmarks/bench_isolation.py [--seconds 10] [--light 4]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import stop  # noqa: E402
from _envs.serving_model import FEATURES, make_data  # noqa: E402
from bench_serving import register_hand_built, start_modelpilot  # noqa: E402

TARGET_RATIO = 2.0
HEAVY_ROWS = 10_000
CONFIGS: dict[str, dict[str, Any]] = {
    "process lane": {"batch_lane": "process"},
    "thread lane": {"batch_lane": "thread"},
    "event loop": {"offload_bytes": 10**9},
}


def write_config(tmp: Path, serving: dict[str, Any]) -> Path:
    options = {"log_flush_rows": 5000, "log_flush_interval": "5s", "max_body_bytes": 4_000_000,
               **serving}
    config = tmp / "pilot.yaml"
    config.write_text(
        "model: {name: bench, target: churned}\nstore: {url: 'sqlite:///store.db'}\n"
        f"artifacts: {{url: artifacts}}\nserving: {json.dumps(options)}\n"
    )
    return config


def heavy_client(url: str, body: bytes, seconds: float, out: Any) -> None:
    """Send ``body`` back to back for ``seconds`` (a separate process); report batches sent."""
    done = refused = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=60) as client:
        while time.monotonic() < deadline:
            r = client.post(url, content=body, headers={"content-type": "application/json"})
            if r.status_code == 200:
                done += 1
            elif r.status_code == 503:
                refused += 1
                time.sleep(0.05)
            else:
                raise RuntimeError(f"heavy request failed: {r.status_code} {r.text[:200]}")
    out.put((done, refused))


async def light_clients(url: str, bodies: list[bytes], clients: int, interval: float,
                        seconds: float) -> list[float]:
    """``clients`` paced clients, one single-row request every ``interval`` s each; latencies (ms)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def one(k: int, client: httpx.AsyncClient) -> None:
        i = k
        next_at = time.monotonic() + interval * k / clients
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            r = await client.post(url, content=bodies[i % len(bodies)],
                                  headers={"content-type": "application/json"})
            latencies.append((time.perf_counter() - t0) * 1000.0)
            if r.status_code != 200:
                raise RuntimeError(f"light request failed: {r.status_code} {r.text[:200]}")
            i += clients
            next_at = max(next_at + interval, time.monotonic())

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(one(k, client) for k in range(clients)))
    return latencies


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    arr = np.asarray(latencies)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
            "rps": len(arr) / seconds, "n": float(len(arr))}


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of one process (not its children), from /proc; 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, light: list[bytes], heavy: bytes, args: argparse.Namespace,
            server_pid: int | None = None) -> dict[str, Any]:
    asyncio.run(light_clients(url, light, args.light, args.interval, 2.0))  # warm-up
    httpx.post(url, content=heavy, headers={"content-type": "application/json"}, timeout=60)
    unloaded = summary(asyncio.run(light_clients(url, light, args.light, args.interval, args.seconds)),
                       args.seconds)
    queue: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=heavy_client, args=(url, heavy, args.seconds + 1.0, queue))
    proc.start()
    time.sleep(1.0)  # the heavy client is up to speed
    spy = None
    if args.profile and server_pid is not None:  # where the server's time goes under load
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                                str(server_pid), "--threads", "--idle", "--nonblocking",
                                "-d", str(int(args.seconds)), "-f", "speedscope", "-o", args.profile],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu = cpu_seconds(server_pid)
    loaded = summary(asyncio.run(light_clients(url, light, args.light, args.interval, args.seconds)),
                     args.seconds)
    server_cpu = cpu_seconds(server_pid) - cpu
    batches, refused = queue.get(timeout=120)
    proc.join(60)
    if spy is not None:
        spy.wait(60)
    return {"unloaded": unloaded, "loaded": loaded, "heavy_batches": batches, "server_cpu": server_cpu, "seconds": args.seconds,
            "heavy_refused": refused, "heavy_seconds": args.seconds + 1.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--light", type=int, default=4, help="light clients")
    ap.add_argument("--interval", type=float, default=0.04,
                    help="seconds between one light client's requests")
    ap.add_argument("--repeat", type=int, default=1, help="measure each configuration N times")
    ap.add_argument("--only", choices=list(CONFIGS), action="append",
                    help="measure only this configuration (repeatable)")
    ap.add_argument("--profile", metavar="FILE",
                    help="py-spy record the server during the loaded phase into FILE (speedscope; "
                         "needs py-spy in the venv; the last configuration measured wins)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-isolation-"))
    df = make_data(20_000)
    bench = register_hand_built(tmp, df)
    records = df[FEATURES].sample(HEAVY_ROWS, random_state=1).to_dict(orient="records")
    light = [json.dumps({"instances": [r]}).encode() for r in records[:500]]
    heavy = json.dumps({"instances": records}).encode()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    print(f"heavy body: {HEAVY_ROWS} instances, {len(heavy) / 1e6:.2f} MB; light: {args.light} clients, "
          f"one single-row request every {args.interval * 1000:.0f} ms each")
    configs = {name: CONFIGS[name] for name in (args.only or CONFIGS)}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    for rep in range(args.repeat):
        for name, serving in configs.items():
            proc: subprocess.Popen[bytes] | None = None
            try:
                config = write_config(tmp, serving)
                proc, base = start_modelpilot(dataclasses.replace(bench, config=config), False)
                got = measure(base + bench.predict_path, light, heavy, args, proc.pid)
            finally:
                if proc is not None:
                    stop(proc)
            results[name].append(got)
            u, lo = got["unloaded"], got["loaded"]
            print(f"  [{rep + 1}/{args.repeat}] {name:10s} light unloaded p50 {u['p50']:6.1f} ms "
                  f"p99 {u['p99']:6.1f} ms {u['rps']:5.0f} req/s | loaded p50 {lo['p50']:6.1f} ms "
                  f"p99 {lo['p99']:6.1f} ms {lo['rps']:5.0f} req/s | heavy "
                  f"{got['heavy_batches'] / got['heavy_seconds']:.2f} batches/s | server process "
                  f"{got['server_cpu'] / args.seconds:.0%} of a CPU", flush=True)
    report(results)
    shutil.rmtree(tmp, ignore_errors=True)


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    print()
    print("| server | light p99 unloaded | light p99 loaded | ratio | light req/s unloaded -> loaded "
          "| heavy rows/s | server process CPU, loaded |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    verdicts = []
    for name, runs in results.items():
        u99 = statistics.median(r["unloaded"]["p99"] for r in runs)
        l99 = statistics.median(r["loaded"]["p99"] for r in runs)
        urps = statistics.median(r["unloaded"]["rps"] for r in runs)
        lrps = statistics.median(r["loaded"]["rps"] for r in runs)
        rows = statistics.median(r["heavy_batches"] * HEAVY_ROWS / r["heavy_seconds"] for r in runs)
        cpu = statistics.median(r["server_cpu"] / r["seconds"] for r in runs)
        ratio = l99 / u99
        print(f"| {name} | {u99:.1f} ms | {l99:.1f} ms | {ratio:.2f}x | {urps:.0f} -> {lrps:.0f} | {rows:,.0f} "
              f"| {cpu:.0%} |")
        if name != "event loop":
            ok = ratio < TARGET_RATIO
            verdicts.append(f"{name}{' (default)' if name == 'process lane' else ''}: {ratio:.2f}x -> "
                            f"{'PASS' if ok else 'FAIL'}")
    print()
    print(f"target: light clients' p99 under load < {TARGET_RATIO:.0f}x their unloaded p99")
    for line in verdicts:
        print("  " + line)


if __name__ == "__main__":
    main()
