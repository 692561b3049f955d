"""Online-feature lookups at serving and webhook delivery throughput.

    /work/main/.venv/bin/python benchmarks/bench_online_features.py
    /work/main/.venv/bin/python benchmarks/bench_online_features.py --rows 1000000 --postgres

Online features (data/online.py): a feature table of ``--rows`` rows over ``--entities``
customers, written as Parquet (held in memory by the server) and to SQLite (with the index
docs/features.md recommends; PostgreSQL too with ``--postgres``). Prints the p50/p99 time of
one request's lookup for 1 and 100 keys, and of ``enrich_body`` on a 100-instance predict
body, against the targets below (a lookup must cost little next to the ~1 ms serving
overhead of docs/serving.md).

Webhooks (integrations/webhooks.py): 500 events delivered to a receiver on 127.0.0.1 that
answers 204, through the real outbox (queue, claim, POST, record), in deliveries per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa

from modelpilot.config import OnlineFeaturesConfig, WebhookConfig
from modelpilot.data.online import FeatureTable, enrich_body
from modelpilot.integrations.webhooks import WebhookDispatcher, start_cursors
from modelpilot.store import Store

TARGET_MS = {"memory 1 key": 0.5, "memory 100 keys": 5.0, "sql 1 key": 5.0, "sql 100 keys": 25.0,
             "enrich 100 instances (memory)": 10.0}
TARGET_DELIVERIES_PER_S = 50.0


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn()  # warm caches and the snapshot
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 99))


def table_frame(rows: int, entities: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t0 = datetime(2026, 1, 1)
    return pd.DataFrame({
        "customer": [f"c{i}" for i in rng.integers(0, entities, rows)],
        "updated_at": [t0 + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400 * 90, rows)],
        "spend_30d": rng.gamma(2.0, 50.0, rows),
        "plan": rng.choice(["free", "pro", "team"], rows),
    })


def report(name: str, p50: float, p99: float) -> bool:
    target = TARGET_MS.get(name) or TARGET_MS[name.replace("postgresql", "sql").replace("sqlite", "sql")]
    ok = p50 <= target
    print(f"  {name:<34} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms   target p50 <= {target:g} ms   "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


def bench_lookups(rows: int, entities: int, repeat: int, postgres: str | None, folder: Path) -> bool:
    frame = table_frame(rows, entities)
    frame.to_parquet(folder / "features.parquet", index=False)
    spec = {"entity": ["customer"], "timestamp": "updated_at", "features": ["spend_30d", "plan"]}
    rng = np.random.default_rng(1)
    one = [(f"c{rng.integers(0, entities)}",)]
    many = [(f"c{i}",) for i in rng.integers(0, entities, 100)]
    ok = True
    memory = FeatureTable(OnlineFeaturesConfig(source="features.parquet", **spec), folder)
    ok &= report("memory 1 key", *timed(lambda: memory.lookup(one), repeat))
    ok &= report("memory 100 keys", *timed(lambda: memory.lookup(many), repeat))
    body = orjson.dumps({"instances": [{"customer": k[0], "tenure": 3} for k in many]})
    ok &= report("enrich 100 instances (memory)",
                 *timed(lambda: enrich_body(memory, body, ["spend_30d", "plan", "tenure"]), repeat))
    urls = {"sqlite": f"sqlite:///{folder / 'features.db'}"} | ({"postgresql": postgres} if postgres else {})
    for name, url in urls.items():
        table = f"features_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            frame.to_sql(table, conn, index=False, chunksize=10_000)
            conn.execute(sa.text(f'CREATE INDEX "ix_{table}" ON "{table}" (customer, updated_at)'))
        try:
            sql = FeatureTable(OnlineFeaturesConfig(source=url, table=table, **spec))
            ok &= report(f"{name} 1 key", *timed(lambda: sql.lookup(one), repeat))  # noqa: B023
            ok &= report(f"{name} 100 keys", *timed(lambda: sql.lookup(many), repeat))  # noqa: B023
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP TABLE "{table}"'))
            engine.dispose()
    return ok


def bench_webhooks(n: int, folder: Path) -> bool:
    class Quick(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quick)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ.setdefault("MP_BENCH_SECRET", "bench-secret")
    try:
        with Store.open(f"sqlite:///{folder / 'store.db'}") as store:
            hook = WebhookConfig(name="bench", url=f"http://127.0.0.1:{server.server_address[1]}/",
                                 secret_env="MP_BENCH_SECRET", events=["*"])
            start_cursors(store, [hook.name])
            for i in range(n):
                store.add_event("promoted", model="m", subject=f"v{i}")
            dispatcher = WebhookDispatcher([hook], store, budget=600)
            start = time.perf_counter()
            delivered = 0
            while delivered < n:
                delivered += dispatcher.pump()["delivered"]
            rate = n / (time.perf_counter() - start)
    finally:
        server.shutdown()
    ok = rate >= TARGET_DELIVERIES_PER_S
    print(f"  webhooks: {n} signed deliveries at {rate:,.0f}/s (SQLite outbox)   target >= "
          f"{TARGET_DELIVERIES_PER_S:g}/s   {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--postgres", nargs="?", const="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="also time PostgreSQL at this URL")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"online features: {args.rows:,} rows over {args.entities:,} entities")
        ok = bench_lookups(args.rows, args.entities, args.repeat, args.postgres, Path(tmp))
        ok &= bench_webhooks(args.deliveries, Path(tmp))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("ALL PASS" if ok else "SOME TARGETS MISSED")


if __name__ == "__main__":
    main()
