"""The in-memory buffer behind ``Store.log_metric``, its time-based flusher and the exit flush.

``log_metric`` is called once per step from training loops, often thousands of times a
second; one transaction per point would make the store the bottleneck. Points wait here
(as ready-to-insert rows) and are written in one batched transaction when the buffer
reaches its size, when its oldest point is :data:`MAX_AGE_SECONDS` old (a background
thread, so a process killed with SIGKILL loses at most about the last second of points),
on ``flush()``/``finish_run()``/``close()``, and at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: a buffered point is written at most about this long after it was logged
MAX_AGE_SECONDS = 0.5
#: how often the flusher looks at the buffers while any holds points
_TICK_SECONDS = 0.1


class _Flushable(Protocol):
    def flush(self) -> None: ...

    def flush_due(self, max_age: float) -> bool: ...


class MetricBuffer:
    """A thread-safe list of metric rows with a size limit.

    ``add`` is the hot path: one lock acquisition and one append. Flushing is the
    store's job; :meth:`take` hands over everything pending and :meth:`put_back` returns
    a batch whose write failed, ahead of newer points, so nothing is lost.
    """

    def __init__(self, limit: int = 10_000, on_first: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self._rows: list[tuple[Any, ...]] = []
        self._since = 0.0  # monotonic time of the oldest pending row
        self._lock = threading.Lock()
        self._on_first = on_first

    def add(self, row: tuple[Any, ...]) -> bool:
        """Queue one row; True when the buffer has reached its limit and should be flushed."""
        with self._lock:
            first = not self._rows
            if first:
                self._since = time.monotonic()
            self._rows.append(row)
            full = len(self._rows) >= self.limit
        if first and self._on_first is not None:
            self._on_first()  # wake the time-based flusher (once per empty -> pending)
        return full

    def take(self) -> list[tuple[Any, ...]]:
        """Remove and return every pending row."""
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def put_back(self, rows: list[tuple[Any, ...]]) -> None:
        """Return rows whose write failed, in front of the ones queued since."""
        with self._lock:
            if rows and not self._rows:
                self._since = time.monotonic()
            self._rows[:0] = rows

    def age(self) -> float:
        """Seconds since the oldest pending row was queued (0 when empty)."""
        with self._lock:
            return time.monotonic() - self._since if self._rows else 0.0

    def __len__(self) -> int:
        return len(self._rows)


# Open stores, weakly: a store that is closed or garbage-collected leaves by itself, and
# the exit hook never keeps one alive.
_open_stores: weakref.WeakSet[_Flushable] = weakref.WeakSet()
_registry_lock = threading.Lock()
_hook_installed = False


def register_for_exit_flush(store: _Flushable) -> None:
    """Flush ``store`` at interpreter exit unless it is closed (or collected) before."""
    global _hook_installed
    with _registry_lock:
        _open_stores.add(store)
        if not _hook_installed:
            atexit.register(_flush_open_stores)
            _hook_installed = True


class _Flusher:
    """One daemon thread per process that writes points once they are old enough.

    It sleeps on an event while every buffer is empty (no wake-ups on an idle process),
    and polls every :data:`_TICK_SECONDS` while any holds points.
    """

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="modelpilot-metric-flush", daemon=True)
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            pending = True
            while pending:
                time.sleep(_TICK_SECONDS)
                with _registry_lock:
                    stores = list(_open_stores)
                pending = False
                for store in stores:
                    try:
                        pending |= store.flush_due(MAX_AGE_SECONDS)
                    except Exception as exc:  # noqa: BLE001 - the points stay buffered; retry next tick
                        log.warning("could not write buffered metrics (will retry): %s", exc)
                        pending = True


_flusher = _Flusher()


def wake_flusher() -> None:
    """Tell the flusher a buffer just got its first pending point."""
    _flusher.poke()


def unregister_exit_flush(store: _Flushable) -> None:
    with _registry_lock:
        _open_stores.discard(store)


def _flush_open_stores() -> None:
    with _registry_lock:
        stores = list(_open_stores)
    for store in stores:
        try:
            store.flush()
        except Exception as exc:  # noqa: BLE001 - at exit, report and keep flushing others
            import sys

            print(f"modelpilot: could not flush buffered metrics at exit: {exc}", file=sys.stderr)
