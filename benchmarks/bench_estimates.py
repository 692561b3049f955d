"""Label-free performance estimates under covariate shift: how far from the truth?

    /work/main/.venv/bin/python benchmarks/bench_estimates.py
    /work/main/.venv/bin/python benchmarks/bench_estimates.py --rows 20000 --current 50000

Classification: P(y=1|x) = sigmoid(f(x)) for a fixed non-linear f of 6 numeric features and
one categorical. Each estimator is trained through modelpilot's own pipeline
(``fit_final``) on rows drawn from the reference distribution, its probabilities are
calibrated on the validation rows exactly as training does (``monitoring.calibration:
auto``), and then a large current window is drawn from a *shifted* P(x) with the same
P(y|x) (covariate shift): mean shifts of one or two features, a wider spread, a
re-weighted sub-population, a category-mix change. For every scenario the script prints
the true accuracy / ROC AUC / F1 on the window and the estimate from raw and from
calibrated probabilities, in points (×100). Target: every calibrated estimate within
1 point of the truth.

Regression: y = g(x) + noise whose spread depends on x (so a shift changes the error).
The error model (``monitoring.errormodel``) is fitted on the validation rows; the script
prints the true RMSE / MAE on each shifted window, the estimate, and the naive estimate
(the validation error), as relative errors. Target: within 10% of the true value.

The current windows are large (default 50,000 rows) so the truth itself is exact to
about ±0.2 points; the validation split is 20% of ``--rows``.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable

import numpy as np
import pandas as pd

from modelpilot.config import PilotConfig
from modelpilot.data import resolve_features
from modelpilot.monitoring import classification_metrics, estimate_performance, regression_metrics
from modelpilot.monitoring.calibration import fit_calibration
from modelpilot.monitoring.errormodel import estimate_error, fit_error_model
from modelpilot.training.fit import fit_final

CLASSIFIERS = [
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.naive_bayes.GaussianNB",
    "lightgbm.LGBMClassifier",
]
REGRESSORS = [
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.linear_model.Ridge",
    "lightgbm.LGBMRegressor",
]
TARGET_POINTS = 1.0
TARGET_RELATIVE = 0.10
CITIES = np.array(["a", "b", "c", "d"])

Shift = Callable[[np.random.Generator, int], pd.DataFrame]


def features(rng: np.random.Generator, n: int, *, mean: dict[int, float] | None = None,
             scale: dict[int, float] | None = None, city_p: list[float] | None = None) -> pd.DataFrame:
    cov = np.eye(6)
    cov[0, 1] = cov[1, 0] = 0.5
    x = rng.multivariate_normal(np.zeros(6), cov, n)
    for j, m in (mean or {}).items():
        x[:, j] += m
    for j, s in (scale or {}).items():
        x[:, j] *= s
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(6)])
    frame["city"] = rng.choice(CITIES, n, p=city_p or [0.4, 0.3, 0.2, 0.1])
    return frame


def subpopulation(rng: np.random.Generator, n: int) -> pd.DataFrame:
    pool = features(rng, 4 * n)
    weight = np.where(pool["x2"] > 0.5, 4.0, 1.0)
    keep = rng.choice(len(pool), n, replace=False, p=weight / weight.sum())
    return pool.iloc[keep].reset_index(drop=True)


SCENARIOS: dict[str, Shift] = {
    "no shift": lambda r, n: features(r, n),
    "x0 +0.75 std": lambda r, n: features(r, n, mean={0: 0.75}),
    "x2,x3 +1 std": lambda r, n: features(r, n, mean={2: 1.0, 3: 1.0}),
    "x1,x4 spread x1.6": lambda r, n: features(r, n, scale={1: 1.6, 4: 1.6}),
    "x2 > 0.5 four times as common": subpopulation,
    "city mix reversed": lambda r, n: features(r, n, city_p=[0.1, 0.2, 0.3, 0.4]),
}
_CITY_EFFECT = {"a": -0.5, "b": 0.0, "c": 0.4, "d": 0.8}


def logit(frame: pd.DataFrame) -> np.ndarray:
    x = frame[[f"x{j}" for j in range(6)]].to_numpy()
    city = frame["city"].map(_CITY_EFFECT).to_numpy(np.float64)
    return 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.9 * x[:, 2] * x[:, 3] + np.sin(2 * x[:, 4]) + 0.5 * x[:, 5] ** 2 - 0.5 + city


def labels_classification(rng: np.random.Generator, frame: pd.DataFrame) -> np.ndarray:
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit(frame)))).astype(int)


def labels_regression(rng: np.random.Generator, frame: pd.DataFrame) -> np.ndarray:
    spread = 0.5 + 0.5 * np.abs(frame["x0"].to_numpy()) + 0.3 * (frame["city"] == "d").to_numpy()
    return logit(frame) + rng.normal(0.0, 1.0, len(frame)) * spread


def fit(estimator: str, task: str, frame: pd.DataFrame, seed: int):  # type: ignore[no-untyped-def]
    cfg = PilotConfig.model_validate({"model": {"name": "bench", "target": "y", "estimator": estimator, "task": task}})
    spec = resolve_features(frame, cfg)
    cols = [c["name"] for c in spec.signature]
    n_train = int(0.8 * len(frame))
    train, valid = frame.iloc[:n_train], frame.iloc[n_train:]
    pipe, _ = fit_final(spec, train[cols], train["y"], estimator=estimator, task=task, params={}, seed=seed)
    return pipe, spec, valid[cols], valid["y"].to_numpy()


def bench_classification(rows: int, current: int, seed: int) -> bool:
    rng = np.random.default_rng(seed)
    frame = features(rng, rows)
    frame["y"] = labels_classification(rng, frame)
    windows = {name: make(rng, current) for name, make in SCENARIOS.items()}
    truth_y = {name: labels_classification(rng, w) for name, w in windows.items()}
    ok, worst, cells, summary = True, 0.0, 0, []
    print(f"\nclassification: {rows} reference rows ({rows // 5} validation), windows of {current} rows")
    print(f"{'estimator':<32} {'scenario':<30} {'metric':<9} {'true':>6} {'raw':>7} {'calibrated':>10}")
    for est in CLASSIFIERS:
        if importlib.util.find_spec(est.split(".")[0]) is None:
            print(f"{est:<32} skipped: not installed")
            continue
        pipe, _, X_va, y_va = fit(est, "classification", frame, seed)
        classes = np.asarray(pipe.classes_)
        cal = fit_calibration(pipe.predict_proba(X_va), y_va, classes)
        worst_raw = worst_cal = 0.0
        for name, window in windows.items():
            proba = pipe.predict_proba(window)
            true = classification_metrics(truth_y[name], classes[proba.argmax(axis=1)], proba, classes=classes)
            raw = estimate_performance(proba, classes=classes)
            calibrated = estimate_performance(proba, classes=classes, calibration=cal)
            for metric in ("accuracy", "roc_auc", "f1"):
                t, r, c = 100 * true[metric], 100 * raw[f"expected_{metric}"], 100 * calibrated[f"expected_{metric}"]
                worst, worst_raw, worst_cal = max(worst, abs(c - t)), max(worst_raw, abs(r - t)), max(worst_cal, abs(c - t))
                flag = "" if abs(c - t) <= TARGET_POINTS else "  <-- over target"
                ok &= abs(c - t) <= TARGET_POINTS
                cells += abs(c - t) > TARGET_POINTS
                print(f"{est.rsplit('.', 1)[1]:<32} {name:<30} {metric:<9} {t:6.2f} {r - t:+7.2f} {c - t:+10.2f}{flag}")
        summary.append(f"{est.rsplit('.', 1)[1]:<32} worst |error| raw {worst_raw:5.2f}  calibrated {worst_cal:5.2f} points")
    print("\n".join(["", *summary]))
    print(f"{cells} (estimator, scenario, metric) cells over target")
    print(f"worst calibrated error: {worst:.2f} points (target <= {TARGET_POINTS}) -> {'PASS' if ok else 'FAIL'}")
    return ok


def bench_regression(rows: int, current: int, seed: int) -> bool:
    rng = np.random.default_rng(seed + 1)
    frame = features(rng, rows)
    frame["y"] = labels_regression(rng, frame)
    windows = {name: make(rng, current) for name, make in SCENARIOS.items()}
    truth_y = {name: labels_regression(rng, w) for name, w in windows.items()}
    ok, worst = True, 0.0
    print(f"\nregression: {rows} reference rows ({rows // 5} validation), windows of {current} rows")
    print(f"{'estimator':<32} {'scenario':<30} {'metric':<6} {'true':>7} {'naive':>8} {'estimate':>9}")
    for est in REGRESSORS:
        if importlib.util.find_spec(est.split(".")[0]) is None:
            print(f"{est:<32} skipped: not installed")
            continue
        pipe, spec, X_va, y_va = fit(est, "regression", frame, seed)
        pred_va = pipe.predict(X_va)
        naive = regression_metrics(y_va, pred_va)
        model = fit_error_model(X_va, y_va, pred_va, numeric=spec.numeric, categorical=spec.categorical)
        for name, window in windows.items():
            pred = pipe.predict(window)
            true = regression_metrics(truth_y[name], pred)
            got = estimate_error(model, window, pred)
            for metric in ("rmse", "mae"):
                t, e = true[metric], got[f"expected_{metric}"]
                rel = (e - t) / t
                worst = max(worst, abs(rel))
                ok &= abs(rel) <= TARGET_RELATIVE
                flag = "" if abs(rel) <= TARGET_RELATIVE else "  <-- over target"
                print(f"{est.rsplit('.', 1)[1]:<32} {name:<30} {metric:<6} {t:7.3f} "
                      f"{(naive[metric] - t) / t:+8.1%} {rel:+9.1%}{flag}")
    print(f"worst relative error: {worst:.1%} (target <= {TARGET_RELATIVE:.0%}) -> {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="reference rows (80%% train, 20%% validation)")
    parser.add_argument("--current", type=int, default=50_000, help="rows per shifted window")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    a = bench_classification(args.rows, args.current, args.seed)
    b = bench_regression(args.rows, args.current, args.seed)
    raise SystemExit(0 if a and b else 1)


if __name__ == "__main__":
    main()
