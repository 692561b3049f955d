"""Draw docs/img/policy-before-after.png: one real backtest, the loop before and after the change detector.

    pip install 'modelpilot[bench]'    # matplotlib
    PYTHONPATH=src python tools/policy_picture.py [--scenario sudden] [--seed 0] [--out docs/img/policy-before-after.png]

The same stream (a built-in ``modelpilot.data.synth`` scenario, 500-row batches, labels one
batch late) is replayed twice by :func:`modelpilot.backtest.run_backtest`:

* *before*: the dynamic policy with the change detector off (``triggers.change.enabled:
  false``, ``retraining.change_point: false``) — the performance trigger on its 2,000-row
  window at a 5-point drop, retrains on the recent window mixed with history, warm-started;
* *after*: the default dynamic policy.

The chart is the backtest report's metric chart (metric per batch, ▲ a promoted retrain, ✕
one the gate rejected, dotted lines at the true drifts), drawn with matplotlib so that no
browser is needed. Prints the mean metric and the retrain batches of each replay.
"""

from __future__ import annotations

import argparse
from typing import Any

from modelpilot.backtest import parse_policies, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario

BATCH = 500


def _config(seed: int, before: bool) -> PilotConfig:
    raw: dict[str, Any] = {"model": {"name": "picture", "target": "y", "time_column": "ts", "segments": ["segment"],
                                     "seed": seed}}
    if before:
        raw["triggers"] = {"change": {"enabled": False}}
        raw["retraining"] = {"change_point": False}
    return PilotConfig.from_dict(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="sudden")
    parser.add_argument("--rows", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/img/policy-before-after.png")
    args = parser.parse_args()
    frame, info = scenario(args.scenario, args.rows, seed=args.seed)
    results = {}
    for label, before in (("before", True), ("after", False)):
        cfg = _config(args.seed, before)
        results[label] = run_backtest(frame, cfg, parse_policies(["never", "dynamic"], cfg), batch=BATCH,
                                      label_delay=1, scenario=info)
    lines = [("never", results["after"].policy("never"), "#999999")]
    for label, name, color in (("before", "before: performance trigger only (change detector off)", "#d62728"),
                               ("after", "after: dynamic (default)", "#1f77b4")):
        p = results[label].policy("dynamic")
        print(f"{label}: mean {p['mean_metric']:.4f}, retrains at batches {p['retrain_batches']} "
              f"(promoted {p['retrain_promoted']})")
        lines.append((f"{name}, mean {p['mean_metric']:.3f}", p, color))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.6), dpi=110)
    for name, p, color in lines:
        ys = p["metric_by_batch"]
        ax.plot(range(len(ys)), ys, color=color, lw=2, label=name)
        for b, ok in zip(p["retrain_batches"], p["retrain_promoted"] or [], strict=False):
            ax.scatter([b], [ys[b]], color=color, marker="^" if ok else "x", s=90, zorder=3,
                       edgecolors="white" if ok else None, linewidths=1 if ok else 2)
    drifts = (results["after"].scenario or {}).get("drift_batches", [])
    for b in drifts:
        ax.axvline(b, color="#999999", ls=":", lw=1)
        ax.annotate("drift", (b, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", color="#666666")
    metric = results["after"].metric
    ax.set(xlabel="batch", ylabel=metric)
    ax.set_title(f"{args.scenario} scenario, seed {args.seed}, {BATCH}-row batches, labels one batch late: "
                 f"{metric} per batch\n(▲ retrain promoted, ✕ rejected by the gate)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8, frameon=True)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
