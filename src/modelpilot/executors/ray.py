"""Ray Core tasks (``executor.kind: ray``, ``pip install 'modelpilot[ray]'``).

Each submitted job is one Ray task that reserves ``threads`` CPUs and runs with its
BLAS/OpenMP pools limited to them; its ``ObjectRef`` comes back as a
:class:`concurrent.futures.Future`. Tasks are never retried by Ray (``max_retries=0``,
``retry_exceptions=False``): a retrain registers a version, and a worker that dies fails
its own future only; the controller records the failed run and decides what comes next.
(A retrain is idempotent anyway: its idempotency key registers a version at most once.)

The executor joins a running cluster (``executor.address``: ``"auto"``, the head's
``host:port``, or ``ray://host:10001`` through Ray Client); it never starts one. Joining
happens on the first ``submit``, so a command that only reads the store never connects.
Inside a Ray task (a retrain running its trials) the worker's own connection is used.
Never use it in ``modelpilot serve``: ``ray.init`` replaces the process's SIGTERM handler,
which the server needs to drain its prediction log.

Every node needs modelpilot installed, and reaches the store, the artifact store and the
tuning storage by URL (PostgreSQL and S3): a job never shares files with the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from modelpilot.errors import ConfigError
from modelpilot.executors.base import Executor, run_limited

T = TypeVar("T")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "executor.kind: ray needs Ray: pip install 'modelpilot[ray]' on this machine and on every node"
        ) from None
    return ray


class RayExecutor:
    """Jobs as Ray tasks on an existing cluster.

    Args:
        address: the cluster (``"auto"``, ``"host:port"`` or ``"ray://host:port"``).
        workers: jobs running at once (tuning runs this many trial workers).
        threads: CPUs each task reserves, and the BLAS/OpenMP threads it may use.
    """

    #: jobs may run on other machines: they cannot read files this process wrote
    shares_files = False

    def __init__(self, *, address: str | None = None, workers: int = 2, threads: int | None = None) -> None:
        self.address = address or "auto"
        self._workers = max(1, workers)
        self._threads = max(1, threads or 1)
        self._lock = threading.Lock()
        self._task: Any = None
        self._connected_here = False
        self._refs: set[Any] = set()

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def threads(self) -> int:
        return self._threads

    def _remote(self) -> Any:
        if self._task is None:
            ray = _ray()
            if not ray.is_initialized():  # inside a Ray task the worker is already connected
                try:
                    ray.init(address=self.address, logging_level="WARNING", log_to_driver=False)
                except (ConnectionError, ValueError, RuntimeError) as exc:
                    raise ConfigError(
                        f"executor.address: cannot join the Ray cluster at {self.address!r} ({exc}); "
                        "start one with 'ray start --head' or point executor.address at its head"
                    ) from exc
                self._connected_here = True
            self._task = ray.remote(run_limited).options(
                num_cpus=self._threads, max_retries=0, retry_exceptions=False,
            )
        return self._task

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            ref = self._remote().remote(self._threads, fn, *args, **kwargs)
            self._refs.add(ref)
        future: Future[T] = ref.future()
        future.add_done_callback(lambda _: self._forget(ref))
        return future

    def _forget(self, ref: Any) -> None:
        with self._lock:
            self._refs.discard(ref)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            refs, self._refs = list(self._refs), set()
            if self._task is None:
                return
            ray = _ray()
        if wait:
            ray.wait(refs, num_returns=len(refs)) if refs else None
        else:
            for ref in refs:  # abandoned jobs: their workers are killed
                ray.cancel(ref, force=True)
        with self._lock:
            self._task = None
            if self._connected_here:
                ray.shutdown()
                self._connected_here = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


_check: type[Executor] = RayExecutor
