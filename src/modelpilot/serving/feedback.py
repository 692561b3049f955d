"""Labels for predictions this replica has not seen: held until another replica's log has them.

Behind a load balancer the label for a prediction served by replica A often reaches
replica B before A's log writer has flushed (up to ``serving.log_flush_interval``). B
cannot tell such an id from one never predicted, so it does not refuse it: the labels are
*held* here, and one background thread reads the ``request_id`` column of every
prediction segment that appears in the log (today's and yesterday's partitions, each
segment once). A held label whose prediction shows up is written to the feedback log
with the time it was received, so the monitoring join sees it like any other. A label
still unmatched after ``serving.feedback_hold`` seconds is dropped and counted
(``modelpilot_feedback_dropped_rows_total``): no replica predicted that id.

On shutdown the desk checks once more and writes the labels still held (they were
acknowledged; a feedback row whose prediction never appears is ignored by the join). A
``kill -9`` loses them, like the unflushed rows of the log writer.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from modelpilot.serving.logreader import segment_prefix
from modelpilot.serving.predlog import FeedbackBatch, PredictionLogWriter

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Held:
    label: str
    reward: float | None
    ts_us: int
    deadline: float


class FeedbackDesk:
    """Holds labels for unknown ids and writes them once a prediction segment has the id.

    Thread-safe: :meth:`hold` is called from the event loop, the rest runs on the desk's
    own thread.

    Args:
        artifacts: the artifact store holding the prediction log.
        writer: where matched labels are written.
        hold: seconds a label waits for its prediction before it is dropped.
        poll: seconds between two looks at the log.
        capacity: labels held at most; :meth:`hold` refuses beyond.
        on_resolved: called ``(model, rows)`` when held labels are written.
        on_dropped: called ``(model, rows)`` when held labels expire unmatched.
    """

    def __init__(
        self,
        artifacts: ArtifactStore,
        writer: PredictionLogWriter,
        *,
        hold: float,
        poll: float = 1.0,
        capacity: int = 100_000,
        on_resolved: Callable[[str, int], None] | None = None,
        on_dropped: Callable[[str, int], None] | None = None,
    ) -> None:
        self.artifacts, self.writer = artifacts, writer
        self.hold_seconds, self.poll, self.capacity = float(hold), float(poll), int(capacity)
        self._on_resolved, self._on_dropped = on_resolved, on_dropped
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, _Held]] = {}  # model -> request id -> label
        self._seen: dict[str, set[str]] = {}  # model -> segment keys already read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.resolved = 0
        self.dropped = 0

    @property
    def held(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._held.values())

    def room(self) -> int:
        """How many more labels can be held."""
        return max(0, self.capacity - self.held)

    def hold(self, model: str, ids: list[str], labels: list[str], rewards: list[float | None] | None,
             ts_us: int) -> None:
        """Hold labels of ids no prediction segment has yet (a later label replaces one held)."""
        deadline = time.monotonic() + self.hold_seconds
        with self._lock:
            waiting = self._held.setdefault(model, {})
            for k, rid in enumerate(ids):
                waiting[rid] = _Held(labels[k], None if rewards is None else rewards[k], ts_us, deadline)
        if self._thread is None:
            self.start()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="feedback-desk", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.check()
            except Exception:  # the next poll tries again; held labels stay held
                log.exception("checking held feedback against the prediction log failed")

    def check(self, *, final: bool = False) -> None:
        """Match held labels against new prediction segments; expire old ones.

        With ``final``, every label still held is written (shutdown).
        """
        with self._lock:
            models = [m for m, v in self._held.items() if v]
        for model in models:
            try:
                found = self._new_ids(model)
            except Exception:
                if not final:
                    raise
                log.exception("reading the prediction log at shutdown failed; writing held labels")
                found = set()
            now = time.monotonic()
            with self._lock:
                waiting = self._held.get(model, {})
                matched = {rid: h for rid, h in waiting.items() if rid in found}
                expired = [] if final else [rid for rid, h in waiting.items()
                                            if rid not in matched and h.deadline <= now]
                rest = {rid: h for rid, h in waiting.items() if rid not in matched} if final else {}
                for rid in [*matched, *expired, *rest]:
                    waiting.pop(rid, None)
            self._write(model, {**matched, **rest})
            if matched:
                self.resolved += len(matched)
                if self._on_resolved is not None:
                    self._on_resolved(model, len(matched))
            if expired:
                self.dropped += len(expired)
                log.warning("model %s: %d held labels dropped: no replica logged a prediction with "
                            "their ids within %.0fs (e.g. %s)", model, len(expired), self.hold_seconds,
                            expired[:3])
                if self._on_dropped is not None:
                    self._on_dropped(model, len(expired))

    def _write(self, model: str, rows: dict[str, _Held]) -> None:
        by_ts: dict[int, list[tuple[str, _Held]]] = {}
        for rid, h in rows.items():
            by_ts.setdefault(h.ts_us, []).append((rid, h))
        for ts_us, group in by_ts.items():
            rewards = [h.reward for _, h in group]
            self.writer.log_feedback(FeedbackBatch(
                model=model, ids=[rid for rid, _ in group], labels=[h.label for _, h in group],
                rewards=None if all(r is None for r in rewards) else rewards, ts_us=ts_us,
            ))

    def _new_ids(self, model: str) -> set[str]:
        """Request ids of the prediction segments not read before (today and yesterday)."""
        seen = self._seen.setdefault(model, set())
        today = datetime.now(UTC).date()
        found: set[str] = set()
        listed: set[str] = set()
        for day in (today - timedelta(days=1), today):
            prefix = f"{segment_prefix(model, 'predictions')}date={day.isoformat()}/"
            for key in self.artifacts.list(prefix):
                listed.add(key)
                if key in seen or not key.endswith(".parquet"):
                    continue
                data = self.artifacts.read_named(key)
                table = pq.read_table(io.BytesIO(data), columns=["request_id"])
                found.update(table.column("request_id").to_pylist())
                seen.add(key)
        self._seen[model] = seen & listed  # older days are never read again
        return found

    def close(self) -> None:
        """Stop the thread; match once more and write every label still held."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        try:
            self.check(final=True)
        except Exception:
            log.exception("writing the held feedback at shutdown failed")
