"""Backtest speed: 100,000 rows in 1,000-row batches under never, fixed:every=5 and dynamic.

    /work/main/.venv/bin/python benchmarks/bench_backtest.py
    /work/main/.venv/bin/python benchmarks/bench_backtest.py --rows 200000 --scenario gradual

Replays a generated stream (default: ``sudden``, two concept drifts) through the real loop
with the default config (no tuning, the backtest profile of docs/backtest.md) under
``never``, ``fixed:every=5`` and ``dynamic``, in parallel through the local executor (2
workers), and prints the wall time against the 60-second target, each policy's own replay
time, and the cost of a batch early and late in the replay (batches with a retrain left
out): with a per-batch cost independent of the history, the two stay the same. The load
average is printed before and after, as the wall time depends on what else the machine runs,
and so is the CPU time of all processes, which does not.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from modelpilot.backtest import parse_policies, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario
from modelpilot.executors import LocalExecutor

TARGET_SECONDS = 60.0
POLICIES = ["never", "fixed:every=5", "dynamic"]


def _quiet_batches(p: dict[str, object], part: slice) -> float:
    """Median seconds of the batches in ``part`` that did not retrain."""
    seconds = list(p["batch_seconds"])  # type: ignore[call-overload]
    retrains = set(p["retrain_batches"])  # type: ignore[call-overload]
    quiet = [s for b, s in list(enumerate(seconds))[part] if b not in retrains]
    return float(np.median(quiet)) if quiet else float("nan")


def _ms(seconds: float) -> str:
    return "–" if np.isnan(seconds) else f"{1000 * seconds:4.0f} ms"


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (the workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--scenario", default="sudden")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    frame, info = scenario(args.scenario, args.rows, seed=args.seed)
    cfg = PilotConfig.from_dict({"model": {"name": "bench", "target": "y", "time_column": "ts",
                                           "segments": ["segment"], "seed": args.seed}})
    load_before = os.getloadavg()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with LocalExecutor(workers=2) as executor:
        result = run_backtest(frame, cfg, parse_policies(POLICIES, cfg), batch=args.batch,
                              executor=executor, scenario=info)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    load_after = os.getloadavg()
    print(f"{args.scenario}: {args.rows:,} rows, {result.batches} batches of {args.batch} "
          f"(drifts at batches {result.scenario and result.scenario['drift_batches']})")
    tenth = max(1, result.batches // 10)
    for p in result.policies:
        early, late = (_ms(_quiet_batches(p, part)) for part in (slice(0, tenth), slice(-tenth, None)))
        print(f"  {p['name']:<14} mean {result.metric} {p['mean_metric']:.4f}  retrains {p['retrains']:>2}  "
              f"train CPU {p['train_cpu_seconds']:5.1f} s  replay {p['wall_seconds']:5.1f} s  "
              f"batch without retrain: first tenth {early}, last tenth {late}")
    verdict = "OK" if wall < TARGET_SECONDS else "TOO SLOW"
    print(f"wall time {wall:.1f} s (target < {TARGET_SECONDS:.0f} s on 2 cores): {verdict}")
    # the CPU the run used does not depend on what else the machine runs: on 2 free cores the
    # wall time cannot be below half of it, and is near it when the policies balance
    print(f"CPU time {cpu:.1f} s over all processes (>= {cpu / 2:.1f} s of wall on 2 free cores)")
    print(f"load average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)}, on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
