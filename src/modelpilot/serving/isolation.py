"""A separate lane for large predict requests, so one client cannot starve the others.

A single-row predict is fastest on the event loop (no hop to another thread). A
10,000-instance batch is not: parsing, validating, predicting and serialising it holds the
loop for tens to hundreds of milliseconds, and every other client's request waits behind
it. Requests whose body is larger than ``serving.offload_bytes`` therefore run in this
lane: ``serving.batch_workers`` workers fed by a bounded queue (``serving.batch_queue``
requests may wait). When the lane is full, a large request is refused at once with a 503
and ``Retry-After`` instead of piling up in memory.

The workers are processes by default (``serving.batch_lane: process``,
:class:`ProcessLane`): a thread would keep the loop free but still share the GIL with it,
and on a busy CPU the OS often preempts the thread while it holds the GIL — the loop then
waits for the thread's next time slice. ``benchmarks/bench_isolation.py`` measures both.

The lane is touched only from the event loop (admission is a counter, no lock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import orjson

from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    from modelpilot.serving.predlog import PredictionBatch

T = TypeVar("T")


class ServerBusy(ModelpilotError):
    """The lane for large requests is full (HTTP 503, ``Retry-After``): retry shortly."""

    status_code = 503
    headers = {"Retry-After": "1"}


class BatchLane:
    """Runs large requests on ``workers`` threads, with at most ``queue`` more waiting.

    Args:
        workers: threads predicting large requests at the same time.
        queue: large requests allowed to wait for a thread; beyond, :class:`ServerBusy`.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self.workers = max(1, int(workers))
        self.capacity = self.workers + max(0, int(queue))
        self._executor: ThreadPoolExecutor | None = None
        self.in_flight = 0  # running + waiting
        self.refused = 0
        self.completed = 0

    def _admit(self) -> None:
        if self.in_flight >= self.capacity:
            self.refused += 1
            raise ServerBusy(
                f"{self.in_flight} large requests are already running or waiting "
                f"(serving.batch_workers={self.workers}, serving.batch_queue="
                f"{self.capacity - self.workers}): retry in a second, or send smaller batches"
            )

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a lane thread; raises :class:`ServerBusy` when the lane is full."""
        self._admit()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="predict-batch")
        self.in_flight += 1
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, fn)
            self.completed += 1
            return result
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        """Finish the requests in the lane and stop its threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


# ---------------------------------------------------------------------- the process lane

_WORKER: dict[str, Any] = {}
_KEEP_VERSIONS = 4


def _worker_init(parent: int, store_url: str, artifacts_url: str, options: dict[str, Any],
                 replica_id: str) -> None:
    """In a lane process: die with the server, open the stores, one BLAS thread."""
    import uuid

    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from modelpilot.artifacts import open_artifacts
    from modelpilot.executors.local import _die_with_parent
    from modelpilot.serving.predlog import PredictionLogWriter
    from modelpilot.store import Store

    _die_with_parent(parent)
    threadpool_limits(limits=1)
    artifacts = open_artifacts(artifacts_url, options)
    quarantined: list[tuple[str, str, int, str, str]] = []
    # its own segment names (<server replica>-lane<random>-<seq>): a restarted process or a
    # second worker never reuses another's; nothing is buffered, write_now() writes at once
    writer = PredictionLogWriter(artifacts, replica_id=f"{replica_id}-lane{uuid.uuid4().hex[:6]}",
                                 on_quarantine=lambda *report: quarantined.append(report))
    _WORKER.update(store=Store.open(store_url), artifacts=artifacts, models={}, writer=writer,
                   quarantined=quarantined)


def _worker_predict(name: str, version: int, body: bytes, max_instances: int, log_rows: int,
                    started: float, retired_fraction: float) -> RemoteAnswer:
    """Parse, predict and serialise one large request in a lane process; log it when asked.

    A request of at least ``log_rows`` rows (0: never) is written to this process's own
    prediction-log segment before the answer leaves, so the server receives only the body
    and the ids. A smaller one (a segment each would make many small files), one whose
    every column a rollout's shadow needs (``log_rows=0``), or one whose write fails travels
    back for the server's buffered writer. With ``retired_fraction`` > 0 the rows of the retired
    champion's sample (``retired_mask``, a deterministic tenth by default) travel back too.
    ``started`` is the request's ``time.monotonic()`` in the server (one clock for every
    process of the machine).
    """
    from modelpilot.rollout.router import retired_mask
    from modelpilot.serving.cache import load_version
    from modelpilot.serving.predlog import PredictionBatch
    from modelpilot.serving.schema import new_ids

    models: dict[tuple[str, int], Any] = _WORKER["models"]
    model = models.get((name, version))
    if model is None:
        model = load_version(_WORKER["store"], _WORKER["artifacts"], name, version)
        while len(models) >= _KEEP_VERSIONS:  # the oldest goes (a hot swap replaced it)
            models.pop(next(iter(models)))
        models[(name, version)] = model
    parsed = model.schema.parse(body, max_instances=max_instances)
    ids = parsed.ids if parsed.ids is not None else new_ids(parsed.n)
    out = model.predict_columns(parsed.columns)
    labels = out.labels if out.labels.dtype.kind == "f" else out.labels.tolist()
    payload: dict[str, Any] = {"predictions": labels, "ids": ids, "model_version": version}
    if out.probabilities is not None:
        payload["probabilities"] = out.probabilities
    content = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    rows = PredictionBatch(
        model=name, ids=ids, version=version, predictions=out.labels, scores=out.scores,
        probabilities=out.probabilities, features=parsed.columns,
        latency_ms=(time.monotonic() - started) * 1000.0,
    )
    if not log_rows or len(rows) < log_rows:  # the rows go back whole: the server takes any sample from them
        return RemoteAnswer(content, ids, rows, 0, [])
    quarantined: list[tuple[str, str, int, str, str]] = _WORKER["quarantined"]
    stored = _WORKER["writer"].write_now(rows)
    reports = list(quarantined)
    quarantined.clear()
    if not stored:  # e.g. the artifact store is unreachable: the server's writer retries
        return RemoteAnswer(content, ids, rows, 0, reports)
    sample = None
    if retired_fraction > 0:
        idx = np.flatnonzero(retired_mask(ids, version, retired_fraction))
        sample = ([ids[i] for i in idx], {k: v[idx] for k, v in parsed.columns.items()})
    return RemoteAnswer(content, ids, None, len(rows) - sum(r[2] for r in reports), reports, sample)


@dataclass(frozen=True, slots=True)
class RemoteAnswer:
    """What a lane process sends back.

    Attributes:
        content: the response body.
        ids: the request ids it answered.
        rows: the rows the server must still log (with their features), or None when the
            lane process stored them already.
        logged: rows the lane process wrote to its own segment.
        quarantined: ``(model, kind, rows, reason, key)`` for rows that could not be
            encoded and were set aside (the server counts them and records an event).
        sample: ``(ids, columns)`` of the rows in the retired champion's sample, when asked and
            the lane logged the rows (otherwise ``rows`` carries every column).
    """

    content: bytes
    ids: list[str]
    rows: PredictionBatch | None
    logged: int
    quarantined: list[tuple[str, str, int, str, str]]
    sample: tuple[list[str], dict[str, np.ndarray]] | None = None


class ProcessLane(BatchLane):
    """A batch lane of worker processes: large requests do not share the server's GIL.

    Each process opens the store and the artifact store from URLs, loads the version it is
    asked for (the first large request after a swap pays the load), writes the request's
    rows to its own prediction-log segment (``<replica>-lane<random>-<seq>``) and returns
    only the response body and the ids — unpickling and logging 10,000 rows in the server
    process would take its GIL from the event loop (the retired champion's sample, a tenth
    of the rows, comes back for the shadow thread). When a rollout's shadow needs every
    column (``log_rows=0``), the request is under ``serving.lane_log_rows`` rows, or the
    segment cannot be written, the rows go back to the
    server's writer instead. Processes are started from
    scratch (loky) on the first large request — a server that never gets one never starts
    them — and exit by themselves when the server dies. The model cache's fault injector
    (a testing aid) does not reach them.
    """

    def __init__(self, workers: int, queue: int, *, store_url: str, artifacts_url: str,
                 options: dict[str, Any], replica_id: str = "server") -> None:
        super().__init__(workers, queue)
        self._init = (store_url, artifacts_url, dict(options), replica_id)
        self._pool: Any = None

    def _processes(self) -> Any:
        if self._pool is None:
            import os

            from loky import ProcessPoolExecutor
            from loky.backend.context import get_context

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, context=get_context("loky"),
                initializer=_worker_init, initargs=(os.getpid(), *self._init),
            )
        return self._pool

    async def predict(self, name: str, version: int, body: bytes, max_instances: int, *,
                      log_rows: int = 1, started: float | None = None,
                      retired_fraction: float = 0.0) -> RemoteAnswer:
        """One large request answered by a lane process (ServerBusy when the lane is full).

        A request of at least ``log_rows`` rows (0: never) is in the prediction log when
        this returns (otherwise the answer carries its rows back in ``rows``); ``started`` is the request's
        ``time.monotonic()``, for the logged latency; ``retired_fraction`` > 0 brings the
        retired champion's sample back in ``sample``.
        """
        self._admit()
        self.in_flight += 1
        try:
            future = self._processes().submit(
                _worker_predict, name, version, body, max_instances, log_rows,
                time.monotonic() if started is None else started, retired_fraction)
            result: RemoteAnswer = await asyncio.wrap_future(future)
            self.completed += 1
            return result
        finally:
            self.in_flight -= 1

    def start(self) -> None:
        """Start the processes now (a server does it at startup, not on the first batch)."""
        self._processes().submit(int, 0)

    def close(self) -> None:
        super().close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
