"""Local worker processes (``executor.kind: local``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from modelpilot.executors.base import Executor, run_limited, slot_threads

T = TypeVar("T")

#: how often a worker checks that the process that started it is still alive
PARENT_CHECK_SECONDS = 0.25


def _die_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as the parent process is gone.

    A controller killed with SIGKILL cannot shut its pool down, and an orphaned worker
    would finish its training and register a version while the restarted controller
    trains the same retrain again. The worker watches its parent id (it changes when the
    parent dies and the worker is re-parented) from a daemon thread and exits at once;
    a worker's own pool (trials of a tuning run) does the same, so the whole tree goes.
    A polled check rather than ``PR_SET_PDEATHSIG``: Linux ties that signal to the
    *thread* that started the worker, and the pool may start workers from any thread.
    """

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(PARENT_CHECK_SECONDS)
        os._exit(1)  # no cleanup: the parent's store transaction owns nothing of ours

    threading.Thread(target=watch, name="modelpilot-parent-watch", daemon=True).start()


class LocalExecutor:
    """A pool of fresh worker processes, started lazily on first use.

    The workers are started from scratch (loky's ``loky`` context, a ``spawn`` that does not
    run the caller's main module), not forked: the caller may hold threads (a web server, a
    log writer, SQLite connections) that must not be duplicated into a child. Because a
    worker never re-imports ``__main__``, a plain script that calls ``Pilot.train()`` at
    module level works without an ``if __name__ == "__main__":`` guard; with the standard
    library's ``spawn`` or ``forkserver`` every worker would re-run that script and the
    pool would break.
    Workers exit by themselves within :data:`PARENT_CHECK_SECONDS` when the process that
    owns the pool dies, however it dies. Each job's BLAS/OpenMP threads are limited to
    ``threads`` (default: the usable cores shared equally among the workers).
    """

    def __init__(self, *, workers: int = 2, threads: int | None = None) -> None:
        self._workers = max(1, workers)
        self._threads = slot_threads(self._workers, threads)
        self._pool: Any = None
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def threads(self) -> int:
        return self._threads

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._pool is None:
                from loky import ProcessPoolExecutor
                from loky.backend.context import get_context

                self._pool = ProcessPoolExecutor(
                    max_workers=self._workers, context=get_context("loky"),
                    initializer=_die_with_parent, initargs=(os.getpid(),),
                )
            future: Future[T] = self._pool.submit(run_limited, self._threads, fn, *args, **kwargs)
            return future

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            if self._pool is not None:
                # not waiting means the jobs are abandoned: their workers are killed
                self._pool.shutdown(wait=wait, kill_workers=not wait)
                self._pool = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


_check: type[Executor] = LocalExecutor
