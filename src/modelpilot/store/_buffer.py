"""The in-memory buffer behind ``Store.log_metric`` and the exit-time flush.

``log_metric`` is called once per step from training loops, often thousands of times a
second; one transaction per point would make the store the bottleneck. Points wait here
(as ready-to-insert rows) and are written in one batched transaction when the buffer
reaches its size, on ``flush()``/``finish_run()``/``close()``, and at interpreter exit.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any, Protocol


class _Flushable(Protocol):
    def flush(self) -> None: ...


class MetricBuffer:
    """A thread-safe list of metric rows with a size limit.

    ``add`` is the hot path: one lock acquisition and one append. Flushing is the
    store's job; :meth:`take` hands over everything pending and :meth:`put_back` returns
    a batch whose write failed, ahead of newer points, so nothing is lost.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def add(self, row: tuple[Any, ...]) -> bool:
        """Queue one row; True when the buffer has reached its limit and should be flushed."""
        with self._lock:
            self._rows.append(row)
            return len(self._rows) >= self.limit

    def take(self) -> list[tuple[Any, ...]]:
        """Remove and return every pending row."""
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def put_back(self, rows: list[tuple[Any, ...]]) -> None:
        """Return rows whose write failed, in front of the ones queued since."""
        with self._lock:
            self._rows[:0] = rows

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
