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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson

from modelpilot.errors import ModelpilotError

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


def _worker_init(parent: int, store_url: str, artifacts_url: str, options: dict[str, Any]) -> None:
    """In a lane process: die with the server, open the stores, one BLAS thread."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from modelpilot.artifacts import open_artifacts
    from modelpilot.executors.local import _die_with_parent
    from modelpilot.store import Store

    _die_with_parent(parent)
    threadpool_limits(limits=1)
    _WORKER.update(store=Store.open(store_url), artifacts=open_artifacts(artifacts_url, options),
                   models={})


def _worker_predict(name: str, version: int, body: bytes, max_instances: int) -> RemoteAnswer:
    """Parse, predict and serialise one large request in a lane process."""
    from modelpilot.serving.cache import load_version
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
    return RemoteAnswer(content, ids, out.labels, out.scores, out.probabilities, parsed.columns)


@dataclass(frozen=True, slots=True)
class RemoteAnswer:
    """What a lane process sends back: the response body and the rows to log."""

    content: bytes
    ids: list[str]
    predictions: np.ndarray
    scores: np.ndarray
    probabilities: np.ndarray | None
    columns: dict[str, np.ndarray]


class ProcessLane(BatchLane):
    """A batch lane of worker processes: large requests do not share the server's GIL.

    Each process opens the store and the artifact store from URLs, loads the version it is
    asked for (the first large request after a swap pays the load) and returns the
    response body plus the rows for the server's log writer. Processes are started from
    scratch (loky) on the first large request — a server that never gets one never starts
    them — and exit by themselves when the server dies. The model cache's fault injector
    (a testing aid) does not reach them.
    """

    def __init__(self, workers: int, queue: int, *, store_url: str, artifacts_url: str,
                 options: dict[str, Any]) -> None:
        super().__init__(workers, queue)
        self._init = (store_url, artifacts_url, dict(options))
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

    async def predict(self, name: str, version: int, body: bytes, max_instances: int) -> RemoteAnswer:
        """One large request answered by a lane process (ServerBusy when the lane is full)."""
        self._admit()
        self.in_flight += 1
        try:
            future = self._processes().submit(_worker_predict, name, version, body, max_instances)
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
