"""The executor contract."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class Executor(Protocol):
    """Runs picklable functions somewhere else and hands back futures.

    Contract:
      * ``fn`` and its arguments must be picklable (module-level functions, plain data);
        results come back by value, so a job never shares memory with the caller.
      * ``submit`` is thread-safe; ``shutdown`` waits for running jobs when ``wait``.
      * An exception raised by ``fn`` is re-raised by ``Future.result()``; a worker that
        dies (killed, out of memory) fails its future, never the caller's process.
    """

    @property
    def workers(self) -> int:
        """How many jobs run at once."""
        ...

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]: ...

    def shutdown(self, wait: bool = True) -> None: ...
