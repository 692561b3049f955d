"""The executor contract, and the thread budget of a job.

Every job (a training run, a trial worker, a backtest policy) owns a share of the cores:
its *slot*. BLAS and OpenMP would otherwise start one thread per core in every job, and
on a machine whose cores are already busy those threads wait for each other: a fit that
takes 2 s of CPU then takes tens of seconds of wall time. :func:`run_limited` is the
entry point every executor runs a job through; it sets the job's thread pools
(threadpoolctl) to the cores its slot owns, and :func:`limit_threads` never lets a nested
limit (a tuning run inside a retrain) raise the ceiling its caller set.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar, runtime_checkable

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

T = TypeVar("T")

_ceiling: int | None = None  # the thread limit in force in this process (None: none set here)
_ceiling_lock = threading.Lock()


@runtime_checkable
class Executor(Protocol):
    """Runs picklable functions somewhere else and hands back futures.

    Contract:
      * ``fn`` and its arguments must be picklable (module-level functions, plain data);
        results come back by value, so a job never shares memory with the caller.
      * ``submit`` is thread-safe; ``shutdown`` waits for running jobs when ``wait``.
      * An exception raised by ``fn`` is re-raised by ``Future.result()``; a worker that
        dies (killed, out of memory) fails its future, never the caller's process.
      * A job is run once: a job that fails is never retried behind the caller's back
        (a retrain registers a version, and the controller decides what a failure means).
      * Each job runs with its BLAS/OpenMP thread pools limited to ``threads``.
    """

    @property
    def workers(self) -> int:
        """How many jobs run at once."""
        ...

    @property
    def threads(self) -> int:
        """The BLAS/OpenMP threads (cores) each job owns."""
        ...

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]: ...

    def shutdown(self, wait: bool = True) -> None: ...


def usable_cpus() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def slot_threads(workers: int, threads: int | None = None) -> int:
    """The threads each of ``workers`` concurrent jobs owns: ``threads`` when configured,
    else an equal share of the usable cores; never above the limit this process runs under."""
    share = threads if threads is not None else usable_cpus() // max(1, workers)
    if _ceiling is not None:
        share = min(share, _ceiling)
    return max(1, share)


@contextmanager
def limit_threads(threads: int) -> Iterator[int]:
    """Limit BLAS/OpenMP thread pools to ``threads`` (or to the enclosing limit, if lower).

    Yields the limit in force. Thread pools are process-wide, so is the limit.
    """
    global _ceiling
    with _ceiling_lock:
        previous = _ceiling
        effective = max(1, threads if previous is None else min(threads, previous))
        _ceiling = effective
    try:
        with threadpool_limits(limits=effective):
            yield effective
    finally:
        with _ceiling_lock:
            _ceiling = previous


def run_limited(threads: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` with its thread pools limited to ``threads`` (the executors' entry point)."""
    with limit_threads(threads):
        return fn(*args, **kwargs)


def current_node() -> str:
    """Where this code runs: the Ray node id inside a Ray worker, else the host name."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        node: str = ray.get_runtime_context().get_node_id()
        return node
    return socket.gethostname()
