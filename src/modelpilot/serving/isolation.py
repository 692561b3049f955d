"""A separate lane for large predict requests, so one client cannot starve the others.

A single-row predict is fastest on the event loop (no thread hop). A 10,000-instance
batch is not: parsing, validating, predicting and serialising it holds the loop for tens
to hundreds of milliseconds, and every other client's request waits behind it. Requests
whose body is larger than ``serving.offload_bytes`` therefore run in this lane: a small
pool of worker threads (``serving.batch_workers``) fed by a bounded queue
(``serving.batch_queue`` requests may wait). The loop stays free to answer the light
requests between the GIL switches of the worker; when the lane is full, a large request
is refused at once with a 503 and ``Retry-After`` instead of piling up in memory.

The lane is touched only from the event loop (admission is a counter, no lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

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

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a lane thread; raises :class:`ServerBusy` when the lane is full."""
        if self.in_flight >= self.capacity:
            self.refused += 1
            raise ServerBusy(
                f"{self.in_flight} large requests are already running or waiting "
                f"(serving.batch_workers={self.workers}, serving.batch_queue="
                f"{self.capacity - self.workers}): retry in a second, or send smaller batches"
            )
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
