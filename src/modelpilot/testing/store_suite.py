"""The conformance suite every metadata store backend passes.

Subclass :class:`StoreSuite` in a test module and give it two fixtures: ``store_url``, the
URL of a fresh, empty database, and ``store``, a :class:`~modelpilot.store.Store` opened
on it (closed at teardown); pytest then runs every check against that backend::

    class TestSQLiteStore(StoreSuite):
        @pytest.fixture
        def store_url(self, tmp_path):
            return f"sqlite:///{tmp_path / 'store.db'}"

        @pytest.fixture
        def store(self, store_url):
            with Store.open(store_url) as store:
                yield store

The checks use only the public API, plus a second ``Store`` (or another process) opened
on the same URL to see what was really committed. Needs pytest.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from modelpilot.errors import Conflict, ModelNotFound, NotFound, RequestError, StoreError
from modelpilot.store import ModelVersionRecord, Store

T = TypeVar("T")
_SIGNATURE = [{"name": "x", "type": "float"}]


def register(store: Store, model: str = "churn", **overrides: Any) -> ModelVersionRecord:
    """Register a version with plausible defaults."""
    values: dict[str, Any] = {
        "run_id": None,
        "artifact_key": "sha256/ab/cd.skops",
        "reference_key": None,
        "signature": _SIGNATURE,
        "task": "classification",
        "classes": [0, 1],
        "metrics": {"auc": 0.8},
        "lineage": {"dataset_hashes": ["h1"]},
    }
    return store.register_version(model, **{**values, **overrides})


def race(n: int, fn: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``fn(0..n-1)`` in n threads released at once; results or exceptions, by index."""
    barrier = threading.Barrier(n)
    results: list[T | BaseException] = [RuntimeError("not run")] * n

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - the caller inspects it
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def register_in_process(url: str, model: str, n: int, barrier: Any, out: Any) -> None:
    """Process body for the multi-process test: open, wait for the peer, register n."""
    with Store.open(url) as store:
        barrier.wait(60)
        out.put([register(store, model, description=f"p{i}").version for i in range(n)])


class StoreSuite:
    """Checks of the Store contract; needs ``store`` and ``store_url`` fixtures."""

    # ------------------------------------------------------------------ datasets, models

    def test_add_dataset_is_idempotent_on_hash(self, store: Store) -> None:
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        first = store.add_dataset("h1", "data.parquet", 10, {"x": "float"}, t0, t0 + timedelta(1))
        again = store.add_dataset("h1", "other.csv", 99, {"y": "int"})
        assert again == first
        assert (first.source, first.rows, first.schema) == ("data.parquet", 10, {"x": "float"})
        assert first.time_max == t0 + timedelta(1) and first.time_max.tzinfo is not None
        assert store.get_dataset("h1") == first
        with pytest.raises(NotFound, match="no dataset snapshot with hash 'nope'"):
            store.get_dataset("nope")

    def test_event_kinds_are_the_distinct_kinds_sorted(self, store: Store) -> None:
        for kind in ("promoted", "trigger_fired", "promoted"):
            store.add_event(kind, model="m", reason="r")
        assert store.event_kinds() == ["promoted", "trigger_fired"]

    def test_reader_reads_and_keeps_nothing_it_writes(self, store: Store) -> None:
        import sqlalchemy as sa

        from modelpilot.store import schema

        store.add_event("kept", reason="r")
        with store.reader() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.events)).scalar_one() == 1
            conn.execute(sa.delete(schema.events))
        assert [e.kind for e in store.events()] == ["kept"]

    def test_models_are_created_once(self, store: Store) -> None:
        store.create_model("b", "second")
        store.create_model("a")
        store.create_model("b")
        assert store.list_models() == ["a", "b"]

    # ------------------------------------------------------------------ runs

    def test_run_lifecycle(self, store: Store) -> None:
        run = store.create_run("churn", "retrain", {"lr": 0.1}, {"team": "x"}, ["h2", "h1"])
        assert store.list_models() == ["churn"]
        assert (run.status, run.kind, run.dataset_hashes) == ("running", "retrain", ["h2", "h1"])
        assert run.created_at.tzinfo == UTC and run.finished_at is None
        store.log_params(run.id, {"depth": 3, "lr": 0.2})
        store.set_tags(run.id, {"owner": "me"})
        store.heartbeat(run.id)
        done = store.finish_run(run.id, "failed", profile={"cpu_s": 1.5}, cost=0.25, error="boom")
        assert done.params == {"lr": 0.2, "depth": 3}
        assert done.tags == {"team": "x", "owner": "me"}
        assert (done.status, done.profile, done.cost, done.error) == (
            "failed",
            {"cpu_s": 1.5},
            0.25,
            "boom",
        )
        assert done.heartbeat_at is not None and done.finished_at is not None
        assert done.finished_at >= done.created_at
        with pytest.raises(RequestError, match="must be one of finished, failed"):
            store.finish_run(run.id, "done")

    def test_missing_run_is_not_found(self, store: Store) -> None:
        for call in (
            lambda: store.get_run(404),
            lambda: store.heartbeat(404),
            lambda: store.log_params(404, {"a": 1}),
            lambda: store.log_metric(404, "loss", 1.0),
        ):
            with pytest.raises(NotFound, match="no run with id 404"):
                call()

    def test_list_runs_filters_newest_first(self, store: Store) -> None:
        a = store.create_run("a")
        b = store.create_run("b", kind="backtest")
        c = store.create_run("a")
        store.finish_run(c.id)
        assert [r.id for r in store.list_runs()] == [c.id, b.id, a.id]
        assert [r.id for r in store.list_runs(model="a")] == [c.id, a.id]
        assert [r.id for r in store.list_runs(status="running")] == [b.id, a.id]
        assert [r.id for r in store.list_runs(kind="backtest")] == [b.id]
        assert [r.id for r in store.list_runs(limit=1)] == [c.id]

    # ------------------------------------------------------------------ metrics

    def test_log_metric_is_buffered_until_flush(self, store: Store, store_url: str) -> None:
        store.metric_max_age = 3600.0  # the time-based flush is tested below
        run = store.create_run("churn")
        store.log_metric(run.id, "loss", 0.9, step=1)
        with Store.open(store_url) as other:
            assert other.metric_history(run.id, "loss") == []
            store.flush()
            points = other.metric_history(run.id, "loss")
        assert [(p.key, p.value, p.step) for p in points] == [("loss", 0.9, 1)]
        assert points[0].timestamp.tzinfo == UTC

    def test_buffered_points_are_written_by_time(self, store: Store, store_url: str) -> None:
        run = store.create_run("churn")
        store.log_metric(run.id, "loss", 0.9, step=1)
        with Store.open(store_url) as other:
            deadline = time.monotonic() + 60  # about half a second normally; bounded for a loaded machine
            while not other.metric_history(run.id, "loss") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [p.value for p in other.metric_history(run.id, "loss")] == [0.9]
        assert len(store._metrics) == 0  # written by the flusher, without flush()

    def test_sigkill_loses_at_most_the_last_second_of_points(self, store: Store, store_url: str) -> None:
        """A process killed after logging and idling past a second has written every point."""
        run = store.create_run("churn")
        code = (
            "import sys, time; from modelpilot.store import Store\n"
            "s = Store.open(sys.argv[1])\n"
            "for i in range(5000): s.log_metric(int(sys.argv[2]), 'loss', i / 10, step=i)\n"
            "time.sleep(1.5); print('logged', flush=True); time.sleep(600)\n"
        )  # never flushes, never exits: killed below
        proc = subprocess.Popen([sys.executable, "-c", code, store_url, str(run.id)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "logged"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert len(store.metric_history(run.id, "loss")) == 5000

    def test_buffer_flushes_at_its_size(self, store: Store, store_url: str) -> None:
        store.metric_max_age = 3600.0
        run = store.create_run("churn")
        for i in range(10_000):
            store.log_metric(run.id, "loss", 1.0 / (i + 1), step=i)
        store.log_metric(run.id, "loss", 0.0, step=10_000)  # stays buffered
        with Store.open(store_url) as other:
            assert len(other.metric_history(run.id, "loss")) == 10_000

    def test_close_and_finish_run_flush(self, store: Store, store_url: str) -> None:
        run = store.create_run("churn")
        store.log_metric(run.id, "acc", 0.5, step=1)
        store.finish_run(run.id)
        writer = Store.open(store_url)
        writer.log_metric(run.id, "acc", 0.7, step=2)
        writer.close()
        assert [p.value for p in store.metric_history(run.id, "acc")] == [0.5, 0.7]
        with pytest.raises(StoreError, match="is closed"):
            writer.get_run(run.id)

    def test_buffer_flushed_at_interpreter_exit(self, store: Store, store_url: str) -> None:
        run = store.create_run("churn")
        code = (
            "import sys; from modelpilot.store import Store\n"
            "s = Store.open(sys.argv[1])\n"
            "for i in range(50): s.log_metric(int(sys.argv[2]), 'loss', i / 10, step=i)\n"
        )  # exits without flush() or close()
        subprocess.run(
            [sys.executable, "-c", code, store_url, str(run.id)], check=True, timeout=120
        )
        assert len(store.metric_history(run.id, "loss")) == 50

    def test_log_metrics_batch_and_latest(self, store: Store) -> None:
        run = store.create_run("churn")
        ts = datetime(2024, 5, 1, 12, tzinfo=UTC)
        store.log_metric(run.id, "loss", 0.3, step=3, timestamp=ts)
        n = store.log_metrics(run.id, [("loss", 0.5, 1), ("loss", 0.4, 2), ("auc", 0.7, 2)])
        assert n == 3
        assert store.log_metrics(run.id, {"auc": 0.8, "nan": float("nan")}, step=5) == 2
        assert store.log_metrics(run.id, []) == 0
        history = store.metric_history(run.id, "loss")
        assert [(p.step, p.value) for p in history] == [(1, 0.5), (2, 0.4), (3, 0.3)]
        assert history[-1].timestamp == ts
        latest = store.latest_metrics(run.id)
        assert latest["loss"] == 0.3 and latest["auc"] == 0.8 and latest["nan"] != latest["nan"]
        with pytest.raises(RequestError, match="must be a number"):
            store.log_metric(run.id, "loss", "high")  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            store.log_metrics(999, {"a": 1.0})

    def test_log_metric_from_threads_loses_nothing(self, store: Store) -> None:
        run = store.create_run("churn")

        def log(i: int) -> None:
            for step in range(3_000):
                store.log_metric(run.id, f"k{i}", float(step), step=step)

        race(4, log)
        store.flush()
        for i in range(4):
            assert [p.step for p in store.metric_history(run.id, f"k{i}")] == list(range(3_000))

    # ------------------------------------------------------------------ versions

    def test_versions_are_numbered_per_model_with_events(self, store: Store) -> None:
        run = store.create_run("churn")
        assert [register(store, run_id=run.id).version for _ in range(3)] == [1, 2, 3]
        assert register(store, "other").version == 1
        v2 = store.get_version("churn", 2)
        assert (v2.run_id, v2.classes, v2.metrics, v2.signature) == (
            run.id,
            [0, 1],
            {"auc": 0.8},
            _SIGNATURE,
        )
        assert [v.version for v in store.list_versions("churn")] == [1, 2, 3]
        latest = store.latest_version("churn")
        assert latest is not None and latest.version == 3
        assert store.latest_version("unknown") is None
        events = store.events(model="churn", kind="version_registered")
        assert [e.numbers["version"] for e in events] == [3, 2, 1]
        with pytest.raises(ModelNotFound, match="has no version 9"):
            store.get_version("churn", 9)

    def test_version_numbers_beyond_the_column_are_not_found(self, store: Store) -> None:
        register(store)
        for number in (2**31, 2**63, 2**64 + 1):  # beyond PostgreSQL's INTEGER, SQLite's INTEGER, 64 bits
            with pytest.raises(ModelNotFound, match=f"has no version {number}"):
                store.get_version("churn", number)
            with pytest.raises(ModelNotFound):
                store.set_alias("churn", "champion", number)
            with pytest.raises(ModelNotFound):
                store.request_approval("churn", number)
            with pytest.raises(ModelNotFound):
                store.decide_approval("churn", number, True, "ann")
            assert store.get_approval("churn", number) is None
        assert store.get_version("churn", 1).version == 1  # nothing else was affected

    def test_idempotency_key_returns_existing_version(self, store: Store) -> None:
        first = register(store, idempotency_key="retrain:7")
        again = register(store, idempotency_key="retrain:7", artifact_key="other")
        assert again == first and first.idempotency_key == "retrain:7"
        assert register(store, "other", idempotency_key="retrain:7").version == 1
        assert store.find_version_by_key("churn", "retrain:7") == first
        assert store.find_version_by_key("churn", "retrain:8") is None
        assert len(store.list_versions("churn")) == 1
        assert len(store.events(model="churn", kind="version_registered")) == 1

    def test_set_version_status_logs_event(self, store: Store) -> None:
        register(store, status="awaiting_approval")
        updated = store.set_version_status("churn", 1, "rejected", actor="ann", reason="bias")
        assert updated.status == "rejected"
        (event,) = store.events(model="churn", kind="version_status")
        assert (event.actor, event.reason, event.numbers) == (
            "ann",
            "bias",
            {"version": 1, "from": "awaiting_approval", "to": "rejected"},
        )
        with pytest.raises(RequestError, match="must be one of registered"):
            store.set_version_status("churn", 1, "deleted")
        with pytest.raises(ModelNotFound):
            store.set_version_status("churn", 5, "archived")

    def test_concurrent_registration_in_threads(self, store: Store) -> None:
        store.create_model("churn")
        results = race(6, lambda i: [register(store).version for _ in range(4)])
        numbers = sorted(v for r in results for v in r)  # type: ignore[union-attr]
        assert numbers == list(range(1, 25))

    def test_concurrent_registration_in_processes(self, store: Store, store_url: str) -> None:
        store.create_model("churn")
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=register_in_process, args=(store_url, "churn", 15, barrier, out))
            for _ in range(2)
        ]
        for proc in procs:
            proc.start()
        got = [out.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(60)
            assert proc.exitcode == 0
        assert sorted(got[0] + got[1]) == list(range(1, 31))
        assert [v.version for v in store.list_versions("churn")] == list(range(1, 31))

    # ------------------------------------------------------------------ aliases

    def test_set_alias_moves_and_logs(self, store: Store) -> None:
        for _ in range(3):
            register(store)
        assert store.get_alias("churn", "champion") is None
        store.set_alias("churn", "champion", 1, reason="first")
        store.set_alias(
            "churn",
            "champion",
            3,
            actor="bob",
            reason="better",
            numbers={"auc_gain": 0.02},
            expected_current=1,
        )
        store.set_alias("churn", "challenger", 2)
        assert store.get_alias("churn", "champion") == 3
        assert store.aliases("churn") == {"challenger": 2, "champion": 3}
        history = store.alias_history("churn", "champion")
        assert [(e.numbers["from"], e.numbers["to"]) for e in history] == [(1, 3), (None, 1)]
        assert history[0].numbers["auc_gain"] == 0.02
        assert (history[0].actor, history[0].reason, history[0].subject) == (
            "bob",
            "better",
            "champion",
        )

    def test_alias_compare_and_set_conflict_changes_nothing(self, store: Store) -> None:
        register(store), register(store)
        store.set_alias("churn", "champion", 1, expected_current=None)
        with pytest.raises(Conflict, match="points at v1, not v2"):
            store.set_alias("churn", "champion", 2, expected_current=2)
        with pytest.raises(Conflict, match="points at v1, not nothing"):
            store.set_alias("churn", "champion", 2, expected_current=None)
        assert store.get_alias("churn", "champion") == 1
        assert len(store.alias_history("churn", "champion")) == 1
        with pytest.raises(ModelNotFound, match="has no version 7"):
            store.set_alias("churn", "champion", 7)
        with pytest.raises(ModelNotFound, match="no model named 'ghost'"):
            store.set_alias("ghost", "champion", 1)

    def test_alias_race_has_one_winner(self, store: Store) -> None:
        for _ in range(7):
            register(store)
        store.set_alias("churn", "champion", 1)
        race(6, lambda i: store.aliases("churn"))  # warm the pool: contend on locks, not connects
        current = 1
        for _ in range(5):  # several rounds, so a broken compare-and-set cannot slip through
            results = race(
                6,
                lambda i, cur=current: store.set_alias(  # type: ignore[misc]
                    "churn", "champion", (cur + i) % 7 + 1, expected_current=cur, actor=f"t{i}"
                ),
            )
            winners = [i for i, r in enumerate(results) if r is None]
            assert len(winners) == 1, results
            assert all(isinstance(r, Conflict) for r in results if r is not None)
            current = (current + winners[0]) % 7 + 1
            assert store.get_alias("churn", "champion") == current
        assert len(store.alias_history("churn", "champion")) == 6

    def test_delete_alias(self, store: Store) -> None:
        register(store)
        store.set_alias("churn", "shadow", 1)
        store.delete_alias("churn", "shadow", actor="ann", reason="done")
        assert store.aliases("churn") == {}
        (event,) = store.events(kind="alias_deleted")
        assert (event.subject, event.actor, event.numbers["from"]) == ("shadow", "ann", 1)
        with pytest.raises(ModelNotFound, match="has no alias 'shadow'"):
            store.delete_alias("churn", "shadow")

    # ------------------------------------------------------------------ events, approvals

    def test_events_filter_newest_first(self, store: Store) -> None:
        a = store.add_event("drift", model="m", numbers={"psi": 0.3}, reason="psi high")
        b = store.add_event("tick", actor="controller")
        c = store.add_event("retrain", model="m", subject="v1")
        assert a.time.tzinfo == UTC and a.numbers == {"psi": 0.3}
        assert [e.id for e in store.events()] == [c.id, b.id, a.id]
        assert [e.id for e in store.events(model="m")] == [c.id, a.id]
        assert [e.id for e in store.events(kind="drift")] == [a.id]
        assert [e.id for e in store.events(kind=["drift", "tick"])] == [b.id, a.id]
        assert store.events(limit=1) == [store.events()[0]]
        assert [e.id for e in store.events(since=b.time)] == [c.id, b.id]
        assert [e.id for e in store.events(until=b.time)] == [a.id]
        assert store.events(since=c.time + timedelta(seconds=1)) == []

    def test_approvals(self, store: Store) -> None:
        register(store), register(store)
        first = store.request_approval("churn", 1)
        assert store.request_approval("churn", 1) == first and first.status == "pending"
        store.request_approval("churn", 2)
        assert [a.version for a in store.pending_approvals("churn")] == [1, 2]
        decided = store.decide_approval("churn", 1, True, actor="ann", comment="ok")
        assert (decided.status, decided.actor, decided.comment) == ("approved", "ann", "ok")
        assert decided.decided_at is not None
        with pytest.raises(Conflict, match="already approved by ann"):
            store.decide_approval("churn", 1, False, actor="bob")
        assert store.decide_approval("churn", 2, False, actor="bob").status == "rejected"
        assert store.pending_approvals() == []
        assert store.get_approval("churn", 3) is None
        kinds = [
            e.kind
            for e in store.events(model="churn", kind=["approval_requested", "approval_decided"])
        ]
        assert kinds == [
            "approval_decided",
            "approval_decided",
            "approval_requested",
            "approval_requested",
        ]
        with pytest.raises(ModelNotFound, match="no approval was requested"):
            store.decide_approval("churn", 9, True, actor="ann")

    # ------------------------------------------------------------------ state

    def test_put_state_revisions_and_compare_and_set(self, store: Store) -> None:
        assert store.get_state("rollout", "churn") is None
        assert store.put_state("rollout", "churn", {"step": 1}, expected_revision=0) == 1
        assert store.put_state("rollout", "churn", {"step": 2}) == 2
        assert store.put_state("rollout", "churn", {"step": 3}, expected_revision=2) == 3
        with pytest.raises(Conflict, match="at revision 3, not 2"):
            store.put_state("rollout", "churn", {"step": 9}, expected_revision=2)
        with pytest.raises(Conflict, match="at revision 3, not 0"):
            store.put_state("rollout", "churn", {"step": 9}, expected_revision=0)
        record = store.get_state_record("rollout", "churn")
        assert record is not None and (record.value, record.revision) == ({"step": 3}, 3)
        assert store.list_state("rollout") == {"churn": {"step": 3}}
        assert store.delete_state("rollout", "churn") is True
        assert store.delete_state("rollout", "churn") is False
        assert store.get_state("rollout", "churn") is None

    def test_put_state_race_has_one_winner(self, store: Store) -> None:
        store.put_state("ctl", "lease", {"owner": None})
        race(6, lambda i: store.get_state("ctl", "lease"))  # warm the connection pool
        for revision in range(1, 6):
            results = race(
                6,
                lambda i, rev=revision: store.put_state(  # type: ignore[misc]
                    "ctl", "lease", {"owner": i, "round": rev}, expected_revision=rev
                ),
            )
            winners = [i for i, r in enumerate(results) if r == revision + 1]
            assert len(winners) == 1, results
            assert all(isinstance(r, Conflict) for r in results if r != revision + 1)
            assert store.get_state("ctl", "lease") == {"owner": winners[0], "round": revision}

    # ------------------------------------------------------------------ monitoring, tokens

    def test_monitoring_reports(self, store: Store) -> None:
        register(store)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        first = store.add_monitoring_report(
            "churn",
            1,
            window_start=start,
            window_end=start + timedelta(hours=1),
            n_predictions=100,
            n_labelled=10,
            summary={"drift_share": 0.1},
            details_key=None,
        )
        second = store.add_monitoring_report(
            "churn",
            1,
            window_start=None,
            window_end=None,
            n_predictions=5,
            n_labelled=0,
            summary={},
            details_key="reports/x.json",
        )
        reports = store.monitoring_reports("churn")
        assert [r.id for r in reports] == [second, first]
        assert reports[1].window_end == start + timedelta(hours=1)
        assert reports[1].summary == {"drift_share": 0.1}
        assert store.monitoring_reports("churn", limit=1)[0].id == second
        later = reports[0].created_at + timedelta(seconds=1)
        assert store.monitoring_reports("churn", since=later) == []
        with pytest.raises(ModelNotFound, match="no model named 'ghost'"):
            store.add_monitoring_report(
                "ghost",
                1,
                window_start=None,
                window_end=None,
                n_predictions=0,
                n_labelled=0,
                summary={},
                details_key=None,
            )

    def test_tokens(self, store: Store) -> None:
        token = store.create_token("ci", "operator", "hash1")
        assert store.find_token("hash1") == token and token.active
        with pytest.raises(Conflict, match="exists already"):
            store.create_token("other", "viewer", "hash1")
        store.revoke_token(token.id)
        store.revoke_token(token.id)
        assert store.find_token("hash1") is None
        (listed,) = store.list_tokens()
        assert listed.revoked_at is not None and not listed.active
        assert [e.kind for e in store.events(kind=["token_created", "token_revoked"])] == [
            "token_revoked",
            "token_created",
        ]
        with pytest.raises(NotFound, match="no token with id 99"):
            store.revoke_token(99)

    # ------------------------------------------------------------------ edge devices

    def test_edge_devices_and_reports_are_stored_once_per_sequence_number(self, store: Store) -> None:
        from modelpilot.store._edge import UnknownDevice

        device = store.add_device("pump-7", "churn")
        assert (device.model, device.last_seq, device.version, device.info) == ("churn", 0, None, {})
        assert store.add_device("pump-7", "churn") == device  # idempotent
        with pytest.raises(Conflict, match="registered for model 'churn'"):
            store.add_device("pump-7", "other")
        first = store.add_edge_report("pump-7", version=1, seq=1, rows=10, size=100, payload={"rows": 10})
        assert first is not None
        assert store.add_edge_report("pump-7", version=1, seq=1, rows=10, size=100, payload={"rows": 10}) is None
        assert store.add_edge_report("pump-7", version=2, seq=2, rows=5, size=50, payload={"rows": 5}) is not None
        rec = store.get_device("pump-7")
        assert (rec.last_seq, rec.version, rec.info["reports"], rec.info["duplicates"], rec.info["rows"]) == (2, 2, 2, 1, 15)
        assert [r.seq for r in store.edge_reports("churn", device="pump-7")] == [1, 2]
        assert [r.seq for r in store.edge_reports("churn", version=2)] == [2]
        assert [r.seq for r in store.edge_reports("churn", after_id=first)] == [2]
        store.pin_device("pump-7", 1)
        store.update_device_info("pump-7", {"+": {"refused": 2}, "note": "x"})
        rec = store.get_device("pump-7")
        assert rec.pinned_version == 1 and rec.info["refused"] == 2 and rec.info["note"] == "x"
        assert [d.device for d in store.list_devices("churn")] == ["pump-7"] and store.list_devices("other") == []
        with pytest.raises(UnknownDevice, match="modelpilot edge device add ghost"):
            store.add_edge_report("ghost", version=1, seq=1, rows=1, size=1, payload={})

    # ------------------------------------------------------------------ times, lifecycle

    def test_naive_datetimes_are_taken_as_utc(self, store: Store) -> None:
        ds = store.add_dataset("h", "s", 1, {}, datetime(2024, 3, 1, 8, 30))
        assert ds.time_min == datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
        other = datetime(2024, 3, 1, 10, 30, tzinfo=timedelta_zone(2))
        assert store.add_dataset("h2", "s", 1, {}, other).time_min == ds.time_min

    def test_reopening_keeps_data(self, store: Store, store_url: str) -> None:
        register(store)
        with Store.open(store_url) as again:
            assert again.get_version("churn", 1).artifact_key == "sha256/ab/cd.skops"


def timedelta_zone(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours))
