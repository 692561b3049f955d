"""Failed token attempts over HTTP: a per-client lockout, and one audit row per window.

Every failed check of a client (its address) is counted in a window of
``serving.auth_failure_window`` seconds that starts at its first failure. Wrong tokens —
an unknown or revoked bearer token, a wrong token on the login form — count towards the
lockout: after ``serving.auth_max_failures`` of them in one window the client is refused
with a 429 and ``Retry-After`` for ``serving.auth_lockout`` seconds, whatever it sends, the
right token included. Missing tokens, too-low roles and refused forms are counted and
audited but never lock a client out (a browser opening a closed dashboard is not guessing).

The audit log gets ONE row per client, kind and window — ``auth_failed`` or
``auth_forbidden``, with the count, the reasons and actions counted, and the window's
start and end — instead of one row per attempt, so anonymous requests cannot flood it.
A window's row is written when the lockout starts (at once), or when the window has
ended: at the next failed attempt of any client, or when the server stops. What is lost
on a kill -9 is the pending windows' counts (at most one window per client).

The state is in memory, per server process: behind a load balancer with N replicas a
client gets at most N × ``auth_max_failures`` tries per window. The client is the peer
address the server sees; behind a proxy that is the proxy's address, so every client
shares one budget (run the proxy's own rate limit there, or one server per proxy).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelpilot.errors import AuthError

#: the reasons that count towards a lockout (a guessed credential)
WRONG_TOKEN = "unknown or revoked token"
LOCKED = "refused while locked out"


class TooManyAttempts(AuthError):
    """Too many wrong tokens from one client: refused until the lockout ends (429)."""

    status_code = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


@dataclass
class _Window:
    started: float                      # monotonic
    started_at: datetime                # wall clock, for the audit row
    reasons: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    actors: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    wrong: int = 0

    @property
    def count(self) -> int:
        return sum(self.reasons.values())


class FailureGuard:
    """Counts failed attempts per client, locks out guessers, writes aggregated audit rows.

    Thread safe (one lock around the counters; store writes happen outside it). ``clock``
    is the monotonic clock the windows and lockouts are measured with.

    Args:
        store: where the audit rows go (``add_event``).
        max_failures: wrong tokens in one window that lock a client out.
        window: seconds a counting window lasts.
        lockout: seconds a locked-out client is refused.
    """

    def __init__(self, store: Any, *, max_failures: int = 10, window: float = 60.0, lockout: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.clock = clock
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], _Window] = {}
        self._locked: dict[str, float] = {}

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client``'s lockout ends, or None when it is not locked out."""
        until = self._locked.get(client)
        if until is None:
            return None
        left = until - self.clock()
        if left <= 0:
            with self._lock:
                self._locked.pop(client, None)
            return None
        return left

    def check(self, client: str, action: str) -> None:
        """Refuse a locked-out client (the refusal is counted, not written at once).

        Raises:
            TooManyAttempts: the client is locked out.
        """
        left = self.retry_after(client)
        if left is None:
            return
        with self._lock:
            self._window(client, "auth_failed").reasons[LOCKED] += 1
            self._open[(client, "auth_failed")].actions[action] += 1
        raise TooManyAttempts(
            f"too many wrong tokens from {client}: refused for {math.ceil(left)} more seconds "
            f"(serving.auth_max_failures = {self.max_failures} per {self.window:g} s; lockout "
            f"{self.lockout:g} s)", left,
        )

    def failure(self, client: str, *, kind: str, reason: str, action: str, actor: str = "anonymous",
                model: str | None = None) -> None:
        """Count one failed attempt; lock the client out when it guessed too often."""
        rows: list[tuple[tuple[str, str], _Window, float | None]] = []
        with self._lock:
            win = self._window(client, kind)
            win.reasons[reason] += 1
            win.actions[action] += 1
            win.actors.add(actor)
            if model:
                win.models.add(model)
            if reason == WRONG_TOKEN:
                win.wrong += 1
                if win.wrong >= self.max_failures:
                    self._locked[client] = self.clock() + self.lockout
                    rows.append(((client, kind), self._open.pop((client, kind)), self.lockout))
            rows.extend(self._due())
        self._write(rows)

    def flush(self, *, everything: bool = False) -> int:
        """Write the rows of ended windows (all windows when ``everything``); their count."""
        with self._lock:
            rows = self._due(everything=everything)
        self._write(rows)
        return len(rows)

    def _window(self, client: str, kind: str) -> _Window:
        key = (client, kind)
        win = self._open.get(key)
        if win is None:
            win = self._open[key] = _Window(self.clock(), datetime.now(UTC))
        return win

    def _due(self, *, everything: bool = False) -> list[tuple[tuple[str, str], _Window, float | None]]:
        now = self.clock()
        for client in [c for c, until in self._locked.items() if until <= now]:
            del self._locked[client]  # ended lockouts of clients that never came back
        done = [k for k, w in self._open.items() if everything or now - w.started >= self.window]
        return [(k, self._open.pop(k), None) for k in done]

    def _write(self, rows: list[tuple[tuple[str, str], _Window, float | None]]) -> None:
        for (client, kind), win, locked_for in rows:
            n = win.count
            top = ", ".join(f"{c} {r}" for r, c in win.reasons.most_common())
            reason = f"{n} failed attempt{'s' if n != 1 else ''} from {client} ({top})"
            if locked_for is not None:
                reason += f"; locked out for {locked_for:g} s"
            actors = sorted(win.actors - {"anonymous"})
            self.store.add_event(
                kind, model=next(iter(win.models)) if len(win.models) == 1 else None,
                subject=f"client {client}", actor=", ".join(actors) if actors else "anonymous", reason=reason,
                numbers={
                    "count": n, "client": client, "reasons": dict(win.reasons), "actions": dict(win.actions.most_common(20)),
                    "window_start": win.started_at.isoformat(), "window_end": datetime.now(UTC).isoformat(),
                    "locked_out_seconds": locked_for,
                },
            )
