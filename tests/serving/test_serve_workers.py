"""``modelpilot serve --workers 2`` on PostgreSQL + S3 (moto's server): stateless replicas.

Connections spread over both workers, a hot swap reaches both, every logged row is in the
log once (each worker writes segments under its own replica id), and a label is accepted
by whichever worker receives it.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from serving_helpers import free_port, instance, register
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import open_artifacts
from modelpilot.serving import PredictionLogReader
from modelpilot.serving.logreader import segment_prefix
from modelpilot.store import Store
from modelpilot.testing import postgres as pg
from modelpilot.testing.s3 import S3Server, moto_s3

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[str, S3Server]]:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        from modelpilot.testing.services import unavailable

        unavailable("moto is not installed: pip install 'modelpilot[test]' to run S3 tests")
    with pg.fresh_schema(pg.postgres_url()) as url, moto_s3(bucket="workers") as s3:
        yield url, s3


def _predict(url: str, i: int) -> dict[str, object]:
    # a new connection per request: the kernel picks a worker per connection
    r = httpx.post(f"{url}/v1/models/churn/predict", json={"instances": [instance(i)], "ids": [f"r{i}"]},
                   headers={"connection": "close"}, timeout=30)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_two_workers_on_postgres_and_s3(tmp_path: Path, shared: tuple[str, S3Server],
                                        classifiers: list[Pipeline]) -> None:
    store_url, s3 = shared
    config = tmp_path / "pilot.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"name": "churn", "target": "churned"},
        "store": {"url": store_url},
        "artifacts": {"url": s3.url("artifacts"), "options": s3.options},
        "serving": {"refresh_interval": 0.2, "log_flush_interval": 0.5},
    }))
    artifacts = open_artifacts(s3.url("artifacts"), s3.options)
    with Store.open(store_url) as store:
        register(store, artifacts, "churn", classifiers[0])
        v2 = register(store, artifacts, "churn", classifiers[1], champion=False)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.Popen([sys.executable, "-m", "modelpilot.cli", "serve", "-c", str(config),
                                 "--port", str(port), "--workers", "2"], env=env, cwd=tmp_path)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None and time.monotonic() < deadline, "the workers did not start"
                try:
                    if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            before = [_predict(url, i) for i in range(24)]
            store.set_alias("churn", "champion", v2, reason="hot swap under two workers")
            i, streak = 24, 0
            while streak < 10:  # both workers answer with v2 (a worker refreshes every 0.2 s)
                assert time.monotonic() < deadline + 60, "the swap never reached every worker"
                streak = streak + 1 if _predict(url, i)["model_version"] == v2 else 0
                i += 1
            after = [_predict(url, j) for j in range(i, i + 24)]
            n = i + 24
            assert {b["model_version"] for b in before} == {1} and {a["model_version"] for a in after} == {v2}
            # labels for every id, each batch on a new connection: whichever worker gets it accepts it
            for start in range(0, n, 20):
                ids = [f"r{j}" for j in range(start, min(n, start + 20))]
                fb = httpx.post(f"{url}/v1/models/churn/feedback", json={"ids": ids, "labels": [1] * len(ids)},
                                headers={"connection": "close"}, timeout=30)
                assert fb.status_code in (200, 202), fb.text
            reader = PredictionLogReader(artifacts, "churn")
            while True:  # held labels are joined once the other worker's segment is written
                joined = reader.joined()
                if len(joined) == n and joined["label"].notna().all():
                    break
                assert time.monotonic() < deadline + 120, f"{joined['label'].notna().sum()} of {n} labels joined"
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    assert code == 0  # both workers drained their logs and exited cleanly

    # every prediction logged exactly once, by the worker that served it
    keys = artifacts.list(segment_prefix("churn", "predictions"))
    rows: Counter[str] = Counter()
    versions: dict[str, set[int]] = {}
    ids: list[str] = []
    for key in keys:
        frame = pd.read_parquet(io.BytesIO(artifacts.read_named(key)))
        replica = key.rsplit("/", 1)[1].rsplit("-", 1)[0]
        rows[replica] += len(frame)
        versions.setdefault(replica, set()).update(int(v) for v in frame["model_version"])
        ids += list(frame["request_id"])
    assert sorted(ids) == sorted(f"r{j}" for j in range(n))
    assert len(rows) == 2 and {r.split("-")[0] for r in rows} == {"w0", "w1"}, rows
    assert min(rows.values()) >= 3, rows  # load spread: each worker served a share of the connections
    assert all(v2 in vs for vs in versions.values()), versions  # the swap reached both
