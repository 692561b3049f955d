"""Following the audit log as it grows: what ``controller`` and ``serve --with-controller``
print while the loop works.

The controller writes every decision to the store before acting on it, so the store is the
one source the timeline is read from, whichever process made the decision (a controller
thread, a training worker, another replica). :class:`EventFollower` polls it and hands each
new event, oldest first, to a callback; :func:`event_dict` is the shape every printer and
``--json`` share.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from modelpilot.store import Store

log = logging.getLogger(__name__)


def event_dict(ev: Any, started: datetime | None = None) -> dict[str, Any]:
    """An event record as plain data; ``t`` = seconds since ``started`` when given."""
    out: dict[str, Any] = {
        "id": ev.id,
        "time": ev.time.isoformat(),
        "kind": ev.kind,
        "model": ev.model,
        "subject": ev.subject,
        "actor": ev.actor,
        "reason": ev.reason,
        "numbers": ev.numbers,
    }
    if started is not None:
        out["t"] = round((ev.time - started).total_seconds(), 1)
    return out


class EventFollower:
    """Calls ``on_event`` with every event of ``model`` written after it was created.

    Use :meth:`poll` from a loop of your own, or as a context manager that polls from a
    background thread every ``interval`` seconds (and once more on exit, so nothing written
    before the exit is missed). ``on_poll`` runs after every poll (a progress display).
    """

    def __init__(
        self,
        store: Store,
        model: str,
        on_event: Callable[[dict[str, Any]], None],
        *,
        interval: float = 0.5,
        on_poll: Callable[[], None] | None = None,
        started: datetime | None = None,
    ) -> None:
        self.store, self.model, self.on_event = store, model, on_event
        self.interval, self.on_poll, self.started = interval, on_poll, started
        latest = store.events(model=model, limit=1)
        self._last = latest[0].id if latest else 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poll(self) -> int:
        """Hand over the events written since the last poll; returns how many."""
        with self._lock:
            fresh = [ev for ev in self.store.events(model=self.model, limit=500) if ev.id > self._last]
            for ev in sorted(fresh, key=lambda e: e.id):
                self._last = ev.id
                self.on_event(event_dict(ev, self.started))
            if self.on_poll is not None:
                self.on_poll()
            return len(fresh)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # a display must never stop the loop it shows
                log.debug("reading the audit log failed", exc_info=True)

    def __enter__(self) -> EventFollower:
        self._thread = threading.Thread(target=self._loop, name="modelpilot-events", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.poll()
