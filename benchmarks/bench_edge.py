"""Edge benchmark: the on-device agent against the server's in-process predict, bundle size,
and the bytes a device sends home.

Fits the product's own pipeline (``build_pipeline``) with HistGradientBoosting on the
serving benchmark's data (``_envs/serving_model.py``: 4 numeric + 2 categorical features,
20,000 rows, fixed seed),
registers it with its reference profile in a fresh store, converts it to ONNX, signs the
bundle, and measures on ONE core (onnxruntime with one thread, BLAS/OpenMP limited to one):

* rows/s for single rows and for batches of 1,000 of
  - ``agent``: the whole agent step — parse the rows, score with onnxruntime, count the
    window's aggregates (``Agent.score_rows``; predictions kept off, they are a file write);
  - ``onnx``: onnxruntime alone on the parsed columns (``Scorer.score``);
  - ``server``: the server's in-process predict, ``LoadedModel.predict_columns`` (the
    verified NumPy fast path when the cache compiled one), on the same columns;
  - ``sklearn``: ``pipeline.predict_proba`` on a one-row / 1,000-row DataFrame;
* the bundle's size, and the bytes sent home for 10,000 rows (one report) against the size
  of the same raw rows as Parquet (what shipping the data to the cloud would move).

Targets: the agent >= 10x scikit-learn's single-row predict per row; bytes home per 10,000
rows < 1 % of the raw rows' Parquet size.

Usage::

    .venv/bin/python benchmarks/bench_edge.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _envs.serving_model import CATEGORICAL, FEATURES, NUMERIC, make_data  # noqa: E402

from modelpilot.artifacts import open_artifacts, put_json, save_model  # noqa: E402
from modelpilot.edge.agent import Agent, open_bundle, wire  # noqa: E402
from modelpilot.edge.bundle import build_bundle, keygen, load_signing_key, public_bytes  # noqa: E402
from modelpilot.edge.export import registered_graph  # noqa: E402
from modelpilot.monitoring.reference import build_reference, score_vector  # noqa: E402
from modelpilot.serving.cache import load_version  # noqa: E402
from modelpilot.store import Store  # noqa: E402
from modelpilot.training import build_pipeline  # noqa: E402
from modelpilot.training.package import save_onnx  # noqa: E402

SIGNATURE = [{"name": n, "type": "float"} for n in NUMERIC] + [{"name": n, "type": "category"} for n in CATEGORICAL]
TARGET_SPEEDUP = 10.0
TARGET_BYTES_SHARE = 0.01


def rows_per_second(step: Callable[[int], Any], n_calls: int, rows_per_call: int) -> float:
    """Median-based rows/s: the median time of one call over ``n_calls`` calls."""
    times = []
    for i in range(n_calls):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
    return rows_per_call / statistics.median(times)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2000, help="single-row calls per path")
    args = ap.parse_args()
    train_df, live = make_data(20_000), make_data(10_000, seed=1)
    with threadpool_limits(1), tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # the product's own pipeline (build_pipeline) with the serving benchmark's estimator
        pipe = build_pipeline(SimpleNamespace(numeric=NUMERIC, categorical=CATEGORICAL),
                              HistGradientBoostingClassifier(max_iter=100, random_state=0))
        pipe.fit(train_df[FEATURES], train_df["churned"])
        store = Store.open(f"sqlite:///{tmp / 'store.db'}")
        artifacts = open_artifacts(str(tmp / "artifacts"))
        val = make_data(5_000, seed=2)
        ref = build_reference(train_df[FEATURES], numeric=NUMERIC, categorical=CATEGORICAL)
        out = build_reference(pd.DataFrame(index=range(len(val))), numeric=[], categorical=[],
                              scores=score_vector(pipe.predict_proba(val[FEATURES])),
                              predictions=pipe.predict(val[FEATURES]))
        ref["score"], ref["prediction"] = out["score"], out["prediction"]
        onnx = save_onnx(artifacts, pipe, SIGNATURE, val[FEATURES])
        record = store.register_version(
            "bench", run_id=None, artifact_key=save_model(artifacts, pipe), reference_key=put_json(artifacts, ref),
            signature=SIGNATURE, task="classification", classes=[int(c) for c in pipe.classes_], metrics={},
            lineage={"estimator": "HistGradientBoostingClassifier", "onnx": onnx})
        store.set_alias("bench", "champion", record.version)
        key = load_signing_key(keygen(tmp / "signing.key")[0])
        onnx_model, _ = registered_graph(artifacts, record)
        bundle_bytes = build_bundle(record, onnx_model, ref, key, inputs=onnx["inputs"], output=onnx["output"],
                                    target="churned", parity=onnx["parity"])
        bundle = open_bundle(bundle_bytes, public_bytes(key))
        server = load_version(store, artifacts, "bench", record.version)
        agent = Agent(bundle, public_bytes(key), tmp / "device", keep_predictions=False, window_rows=10**9)

        singles = records(live[FEATURES].head(args.repeat))
        parsed_one = [agent.parse([r])[0] for r in singles]
        frames_one = [live[FEATURES].iloc[i:i + 1] for i in range(len(singles))]
        batches = [records(live[FEATURES].iloc[i:i + 1000]) for i in range(0, 10_000, 1000)]
        parsed_batch = [agent.parse(b)[0] for b in batches]
        frames_batch = [live[FEATURES].iloc[i:i + 1000] for i in range(0, 10_000, 1000)]
        n1, nb = len(singles), 3 * len(batches)
        results = {
            "agent": (rows_per_second(lambda i: agent.score_rows([singles[i % n1]]), n1, 1),
                      rows_per_second(lambda i: agent.score_rows(batches[i % 10]), nb, 1000)),
            "onnx": (rows_per_second(lambda i: agent.scorer.score(parsed_one[i % n1]), n1, 1),
                     rows_per_second(lambda i: agent.scorer.score(parsed_batch[i % 10]), nb, 1000)),
            "server": (rows_per_second(lambda i: server.predict_columns(parsed_one[i % n1]), n1, 1),
                       rows_per_second(lambda i: server.predict_columns(parsed_batch[i % 10]), nb, 1000)),
            "sklearn": (rows_per_second(lambda i: pipe.predict_proba(frames_one[i % n1]), n1, 1),
                        rows_per_second(lambda i: pipe.predict_proba(frames_batch[i % 10]), nb, 1000)),
        }
        # bytes home for 10,000 rows: one window, one report
        device = Agent(bundle, public_bytes(key), tmp / "device2", keep_predictions=False, window_rows=10**9)
        device.feed(records(live))
        seq = device.close_window()
        report = wire((tmp / "device2" / "outbox" / f"{seq:012d}.json").read_bytes())  # gzip, as sent
        parquet = io.BytesIO()
        live.to_parquet(parquet)
        store.close()

    print(f"edge benchmark: HistGradientBoosting, {len(FEATURES)} features, one core, "
          f"{args.repeat} single rows, {nb} batches of 1,000\n")
    print(f"{'path':<9} {'single rows/s':>14} {'batch-1000 rows/s':>18}")
    for name, (single, batch) in results.items():
        print(f"{name:<9} {single:>14,.0f} {batch:>18,.0f}")
    speedup = results["agent"][0] / results["sklearn"][0]
    vs_server = results["agent"][0] / results["server"][0]
    share = len(report) / parquet.getbuffer().nbytes
    print(f"\nbundle: {len(bundle_bytes):,} bytes (model.onnx {len(onnx_model):,})")
    print(f"bytes home per 10,000 rows: {len(report):,} (one gzip report) vs raw Parquet "
          f"{parquet.getbuffer().nbytes:,} = {share:.3%}")
    print(f"\nagent single-row vs scikit-learn predict_proba: {speedup:.1f}x (target >= {TARGET_SPEEDUP:g}x) "
          f"{'PASS' if speedup >= TARGET_SPEEDUP else 'FAIL'}")
    print(f"agent single-row vs the server's in-process predict: {vs_server:.1f}x")
    print(f"bytes home < {TARGET_BYTES_SHARE:.0%} of raw Parquet: {'PASS' if share < TARGET_BYTES_SHARE else 'FAIL'}")
    print(json.dumps({"rows_per_s": results, "bundle_bytes": len(bundle_bytes), "report_bytes": len(report),
                      "parquet_bytes": parquet.getbuffer().nbytes}))


if __name__ == "__main__":
    main()
