"""Hot swap under load, and SIGTERM of a real server process losing nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from serving_helpers import Env, Served, instance, make_config, register
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import open_artifacts
from modelpilot.serving import PredictionLogReader
from modelpilot.store import Store

PREDICT = "/v1/models/churn/predict"


def test_hot_swap_under_load_fails_no_request(
    served: Served, env: Env, classifiers: list[Pipeline]
) -> None:
    v2 = register(env.store, env.artifacts, "churn", classifiers[1], champion=False)
    stop = threading.Event()
    failures: list[str] = []
    versions: list[list[tuple[float, int]]] = [[] for _ in range(8)]

    def client(k: int) -> None:
        with httpx.Client(base_url=served.url, timeout=30) as c:
            i = 0
            while not stop.is_set():
                try:
                    r = c.post(PREDICT, json={"instances": [instance(i)]})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    versions[k].append((time.monotonic(), r.json()["model_version"]))
                i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    moved_at = time.monotonic()
    env.store.set_alias("churn", "champion", v2, reason="test swap")
    deadline = moved_at + 5.0
    while time.monotonic() < deadline:
        if all(v and v[-1][1] == v2 for v in versions):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    seen = [v for per in versions for _, v in per]
    assert seen.count(1) > 0 and seen.count(v2) > 0
    first_v2 = min(t for per in versions for t, v in per if v == v2)
    assert first_v2 - moved_at < 5 * 0.2 + 1.0  # within a few refresh intervals (+ load)
    # once a client saw v2 it never goes back to v1
    for per in versions:
        got = [v for _, v in per]
        if v2 in got:
            assert 1 not in got[got.index(v2) :]
    assert served.client.get("/healthz").json()["models"] == {"churn": v2}
    assert served.metric("modelpilot_model_swaps_total", model="churn") == 1


SERVER = """
import sys
from modelpilot.config import PilotConfig
from modelpilot.serving import run_server
cfg = PilotConfig.load(sys.argv[1])
run_server(cfg, "127.0.0.1", int(sys.argv[2]), log_level="warning")
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_flushes_every_logged_prediction(tmp_path: Path, classifiers: list[Pipeline]) -> None:
    cfg = make_config(tmp_path)  # log_flush_interval 60 s: only the shutdown flush can write
    (tmp_path / "pilot.yaml").write_text(
        "model: {name: churn, target: churned}\n"
        "store: {url: 'sqlite:///store.db'}\nartifacts: {url: artifacts}\n"
        "serving: {log_flush_interval: 60s, log_flush_rows: 100000}\n"
    )
    with Store.open(cfg.store_url) as store:
        register(store, open_artifacts(cfg.artifacts_url), "churn", classifiers[0])
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path / "pilot.yaml"), str(port)], env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90  # a loaded CI machine can take a while to import and start
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.1)
        n = 120
        with httpx.Client(base_url=url) as c:
            for i in range(n):
                r = c.post(PREDICT, json={"instances": [instance(i)], "ids": [f"s{i}"]})
                assert r.status_code == 200
        artifacts = open_artifacts(cfg.artifacts_url)
        assert PredictionLogReader(artifacts, "churn").count() == 0  # nothing flushed yet
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    logged = PredictionLogReader(artifacts, "churn").predictions()["request_id"]
    assert sorted(logged) == sorted(f"s{i}" for i in range(n))


class SlowAliasStore:
    """The real store, except that one thread's alias read pauses after reading: a poll
    overtaken by a promote and a rollback."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.slow_thread: int | None = None
        self.read = threading.Event()
        self.resume = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def get_alias(self, model: str, alias: str) -> int | None:
        version = self._store.get_alias(model, alias)
        if threading.get_ident() == self.slow_thread:
            self.read.set()
            assert self.resume.wait(10)
        return version


def test_a_slow_poll_never_installs_an_alias_older_than_the_last_refresh(
    env: Env, classifiers: list[Pipeline]
) -> None:
    from modelpilot.serving.cache import ModelCache

    register(env.store, env.artifacts, "churn", classifiers[1], champion=False)  # v2
    store = SlowAliasStore(env.store)
    cache = ModelCache(store, env.artifacts)
    assert cache.load("churn").version == 1
    env.store.set_alias("churn", "champion", 2)

    def poll() -> None:  # the background poll: reads 2, then stalls
        store.slow_thread = threading.get_ident()
        cache.refresh()

    def operator() -> None:  # what /promote then /rollback do: move the alias, refresh
        cache.refresh()
        env.store.set_alias("churn", "champion", 1)
        cache.refresh()

    slow = threading.Thread(target=poll)
    slow.start()
    assert store.read.wait(10)
    fast = threading.Thread(target=operator)
    fast.start()
    fast.join(timeout=2)  # with refreshes serialised it waits for the stalled poll
    store.resume.set()
    slow.join(10)
    fast.join(10)
    assert env.store.get_alias("churn", "champion") == 1
    assert cache.get("churn").version == 1  # not the stalled poll's v2
