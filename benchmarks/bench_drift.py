"""Drift scoring speed and correctness at scale.

    /work/main/.venv/bin/python benchmarks/bench_drift.py            # 100k and 1M rows
    /work/main/.venv/bin/python benchmarks/bench_drift.py --sizes 100000

Reference and current frames of N rows, 20 numeric + 5 categorical features of assorted
shapes (normal, log-normal, uniform, exponential, small integers). In the drifted frame 7
numeric columns move by 0.25 reference std and 2 categoricals move 10 points of share
between two categories; ``auto`` must flag exactly those 9 and nothing on an undrifted
frame drawn from the same distributions. Prints the time to build the reference profile
(done once, at training time) and to score the current frame with every method.
Compares with Evidently only when it is importable (it is not a dependency).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from modelpilot.monitoring import DRIFT_METHODS, build_reference, drift_report

N_NUMERIC, N_CATEGORICAL = 20, 5
SHIFTED_NUMERIC = [f"n{i}" for i in (0, 3, 5, 8, 11, 14, 19)]
SHIFTED_CATEGORICAL = ["c1", "c4"]
CAT_LEVELS = ["a", "b", "c", "d", "e"]
CAT_P = np.array([0.3, 0.25, 0.2, 0.15, 0.1])


def make_frame(n: int, seed: int, shift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(N_NUMERIC):
        kind = i % 5
        if kind == 0:
            x, std = rng.normal(10.0, 2.0, n), 2.0
        elif kind == 1:
            x, std = rng.lognormal(0.0, 0.5, n), float(np.sqrt((np.e**0.25 - 1) * np.e**0.25))
        elif kind == 2:
            x, std = rng.uniform(-1, 1, n), float(np.sqrt(4 / 12))
        elif kind == 3:
            x, std = rng.exponential(3.0, n), 3.0
        else:
            x, std = rng.poisson(4.0, n).astype(np.float64), 2.0
        if shift and f"n{i}" in SHIFTED_NUMERIC:
            x = x + 0.25 * std
        cols[f"n{i}"] = x
    for j in range(N_CATEGORICAL):
        p = CAT_P.copy()
        if shift and f"c{j}" in SHIFTED_CATEGORICAL:
            p[0] += 0.10
            p[1] -= 0.10
        cols[f"c{j}"] = pd.Series(rng.choice(CAT_LEVELS, size=n, p=p)).astype("str")
    frame = pd.DataFrame(cols)
    frame.loc[rng.random(n) < 0.01, "n1"] = np.nan  # a column with missing values
    return frame


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def run(n: int) -> bool:
    numeric = [f"n{i}" for i in range(N_NUMERIC)]
    categorical = [f"c{j}" for j in range(N_CATEGORICAL)]
    ref = make_frame(n, seed=1, shift=False)
    same = make_frame(n, seed=2, shift=False)
    drifted = make_frame(n, seed=3, shift=True)
    scores = 1 / (1 + np.exp(-(ref["n0"].to_numpy() - 10) / 2))
    profile, t_fit = timed(build_reference, ref, numeric=numeric, categorical=categorical,
                           scores=scores, predictions=(scores > 0.5).astype(int))
    print(f"\n== {n:,} reference rows vs {n:,} current rows "
          f"({N_NUMERIC} numeric + {N_CATEGORICAL} categorical)")
    print(f"build_reference (fit, once at training time): {t_fit:8.3f} s")
    for name, cls in DRIFT_METHODS.items():
        method = cls()
        res, t = timed(method.score, profile, drifted)
        flagged = sorted(c for c, r in res.items() if r.drifted)
        print(f"score {name:14s} {t:8.3f} s   flags {len(flagged):2d}/25")
    expected = sorted(SHIFTED_NUMERIC + SHIFTED_CATEGORICAL)
    report, t_auto = timed(drift_report, profile, drifted, method="auto")
    got = sorted(report["drifted_columns"])
    clean = drift_report(profile, same, method="auto")
    ok = got == expected and clean["n_drifted"] == 0
    print(f"drift_report(auto), drifted frame: {t_auto:8.3f} s  (target < 2 s: "
          f"{'ok' if t_auto < 2 else 'MISSED'})")
    print(f"auto flags {len(got)} of 25 on the drifted frame (expected exactly the 9 shifted: "
          f"{'ok' if got == expected else f'WRONG {got}'}); "
          f"{clean['n_drifted']} on the undrifted frame "
          f"({'ok' if clean['n_drifted'] == 0 else 'WRONG ' + str(clean['drifted_columns'])})")
    smallest = min(report["columns"][c]["statistic"] for c in expected)
    largest = max(clean["columns"][c]["statistic"] for c in clean["columns"])
    print(f"margin: smallest effect on a shifted column {smallest:.3f}, "
          f"largest on an undrifted column {largest:.4f}")
    compare_evidently(ref, drifted, numeric, categorical)
    return ok


def compare_evidently(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str],
                      categorical: list[str]) -> None:
    try:
        from evidently import DataDefinition, Dataset, Report  # type: ignore[import-not-found]
        from evidently.presets import DataDriftPreset  # type: ignore[import-not-found]
    except ImportError:
        print("evidently not installed: pip install 'evidently==0.7.23' 'pandas<3' in a "
              "separate venv to compare")
        return
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    r = Dataset.from_pandas(ref, data_definition=definition)
    c = Dataset.from_pandas(cur, data_definition=definition)
    _, t = timed(Report([DataDriftPreset()]).run, c, r)
    print(f"evidently DataDriftPreset (fits and scores from raw frames): {t:8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    results = [run(n) for n in args.sizes]
    print("\nall checks passed" if all(results) else "\nCHECKS FAILED")
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
