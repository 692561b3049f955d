"""Backtest speed: 100,000 rows in 1,000-row batches, dynamic policy, HistGradientBoosting.

    /work/main/.venv/bin/python benchmarks/bench_backtest.py
    /work/main/.venv/bin/python benchmarks/bench_backtest.py --rows 200000 --scenario gradual

Replays a generated stream (default: ``sudden``, two concept drifts) through the real loop
with the default config (no tuning, the backtest profile of docs/backtest.md) under
``never`` and ``dynamic``, in parallel through the local executor (2 workers), and prints
the wall time against the 2-minute target, plus each policy's own replay time.
"""

from __future__ import annotations

import argparse
import time

from modelpilot.backtest import parse_policies, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario
from modelpilot.executors import LocalExecutor

TARGET_SECONDS = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--scenario", default="sudden")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    frame, info = scenario(args.scenario, args.rows, seed=args.seed)
    cfg = PilotConfig.from_dict({"model": {"name": "bench", "target": "y", "time_column": "ts",
                                           "segments": ["segment"], "seed": args.seed}})
    started = time.perf_counter()
    with LocalExecutor(workers=2) as executor:
        result = run_backtest(frame, cfg, parse_policies(["never", "dynamic"], cfg), batch=args.batch,
                              executor=executor, scenario=info)
    wall = time.perf_counter() - started
    print(f"{args.scenario}: {args.rows:,} rows, {result.batches} batches of {args.batch} "
          f"(drifts at batches {result.scenario and result.scenario['drift_batches']})")
    for p in result.policies:
        print(f"  {p['name']:<8} mean {result.metric} {p['mean_metric']:.4f}  retrains {p['retrains']:>2} "
              f"at {p['retrain_batches']}  train CPU {p['train_cpu_seconds']:.1f} s  replay {p['wall_seconds']:.1f} s")
    verdict = "OK" if wall < TARGET_SECONDS else "TOO SLOW"
    print(f"wall time {wall:.1f} s (target < {TARGET_SECONDS:.0f} s on 2 cores): {verdict}")


if __name__ == "__main__":
    main()
