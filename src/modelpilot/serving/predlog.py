"""The prediction log: Parquet segments in the artifact store, queried with DuckDB.

Writing. The request path hands a :class:`PredictionBatch` (the columns it already built)
to :meth:`PredictionLogWriter.log_predictions`: an append to a list under a lock held for
a few bytecodes, and nothing else — no thread is woken per request (waking one is a GIL
hand-off, which cost ~15% of a busy server's time). One background thread wakes every
``poll_interval`` (or at once when ``flush_rows`` rows are waiting), takes the whole list,
buffers the batches per ``(model, kind)`` and writes a Parquet segment when ``flush_rows``
rows are buffered, when the oldest buffered row is ``flush_interval`` old, on
:meth:`~PredictionLogWriter.flush` and on :meth:`~PredictionLogWriter.close` (which drains
everything first). Flush and stop requests travel in the same list, after the rows logged
before them. Each replica names its segments ``<replica>-<seq>`` so replicas never
contend::

    predlog/<model>/predictions/date=YYYY-MM-DD/<replica>-<seq>.parquet
    predlog/<model>/feedback/date=YYYY-MM-DD/<replica>-<seq>.parquet

Prediction columns: ``request_id`` (string), ``ts`` (timestamp[us, UTC]),
``model_version`` (int64), ``role`` ("primary" | "shadow" | "error": a failed challenger call | "retired": the retired champion's sample after a promotion), ``prediction`` (string class
label, or float64 for regression), ``score`` (float64: P(positive class) for binary, the
max probability for multiclass, the prediction for regression), ``probabilities``
(list<float64>, null for regression), ``f_<feature>`` per feature, ``latency_ms``.
Feedback columns: ``request_id``, ``ts``, ``label`` (string), ``reward`` (float64, nullable).

Reading is :class:`PredictionLogReader` (in ``logreader.py``, re-exported here).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modelpilot.serving.logreader import PREFIX, PredictionLogReader, segment_prefix

__all__ = [
    "PREFIX", "FeedbackBatch", "PredictionBatch", "PredictionLogReader", "PredictionLogWriter",
    "segment_prefix",
]

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore

log = logging.getLogger(__name__)

_US_PER_DAY = 86_400_000_000
_TS = pa.timestamp("us", tz="UTC")
_PROBA = pa.list_(pa.float64())


def now_us() -> int:
    """Microseconds since the epoch, UTC (the log's timestamp unit)."""
    return time.time_ns() // 1000


@dataclass(slots=True)
class PredictionBatch:
    """The rows of one predict request (or one chunk of a batch job), column-wise."""

    model: str
    ids: Sequence[str]
    version: int
    predictions: np.ndarray  # object (class labels) or float64 (regression)
    scores: np.ndarray  # float64
    probabilities: np.ndarray | None  # float64 (n, n_classes)
    features: dict[str, np.ndarray]
    latency_ms: float = 0.0
    role: str = "primary"
    ts_us: int = field(default_factory=now_us)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(slots=True)
class FeedbackBatch:
    model: str
    ids: Sequence[str]
    labels: Sequence[str]
    rewards: Sequence[float | None] | None = None
    ts_us: int = field(default_factory=now_us)

    def __len__(self) -> int:
        return len(self.ids)


Batch = PredictionBatch | FeedbackBatch


class _Flush:
    """A marker: everything queued before it is written when ``done`` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class PredictionLogWriter:
    """Buffers logged rows and writes Parquet segments from one background thread.

    Thread-safe: any thread (the event loop, the threadpool, a batch job) may log.
    Logging never blocks and never does IO on the caller's thread. A failed segment
    write (e.g. S3 unreachable) keeps the rows buffered and is retried, and
    :attr:`healthy` says so until a write succeeds again. A row that cannot be encoded at
    all is quarantined (see ``on_quarantine``): it never holds the other rows back.

    Args:
        artifacts: where segments are written (``write_named``, atomic).
        flush_rows: write a segment once this many rows of one (model, kind) are buffered.
        flush_interval: ... or once the oldest buffered row is this many seconds old.
        replica_id: names this writer's segments; a random id by default.
        on_written: called ``(model, kind, rows)`` after each segment write (metrics).
        on_error: called with the exception of each failed segment write (metrics).
        poll_interval: seconds between the writer thread's wake-ups (it is not woken per
            logged batch); also the longest a ``flush_rows`` crossing waits.
        on_quarantine: called ``(model, kind, rows, reason, key)`` when rows that cannot be
            encoded (e.g. a lone surrogate in a label) are set aside under ``key``
            (``predlog/<model>/quarantine/...jsonl``) instead of blocking the buffer.
    """

    def __init__(
        self,
        artifacts: ArtifactStore,
        *,
        flush_rows: int = 5000,
        flush_interval: float = 5.0,
        replica_id: str | None = None,
        on_written: Callable[[str, str, int], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        poll_interval: float = 0.05,
        on_quarantine: Callable[[str, str, int, str, str], None] | None = None,
    ) -> None:
        self.artifacts = artifacts
        self.flush_rows = max(1, int(flush_rows))
        self.flush_interval = float(flush_interval)
        self.poll_interval = max(0.001, float(poll_interval))
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self._on_written = on_written
        self._on_error = on_error
        self._lock = threading.Lock()  # guards _pending, _pending_rows and pending_rows
        self._pending: list[Any] = []  # batches and markers, in order
        self._pending_rows = 0  # rows in _pending
        self._wake = threading.Event()
        self._seq = itertools.count()
        self._buffers: dict[tuple[str, str], list[Batch]] = defaultdict(list)
        self._rows: dict[tuple[str, str], int] = defaultdict(int)
        self._since: dict[tuple[str, str], float] = {}
        self._failed: set[tuple[str, str]] = set()  # last write failed: retry on the timer
        self._on_quarantine = on_quarantine
        self.failing_since: float | None = None  # wall time of the first failed write in a row
        self.last_error: str | None = None
        self.rows_quarantined = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self.pending_rows = 0  # accepted, not yet written
        self.rows_written = 0
        self.segments_written = 0

    # ------------------------------------------------------------------ producer side

    def start(self) -> PredictionLogWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="predlog-writer", daemon=True)
            self._thread.start()
        return self

    def log_predictions(self, batch: PredictionBatch) -> None:
        """Queue the rows of one request; returns at once."""
        self._put(batch)

    def log_feedback(self, batch: FeedbackBatch) -> None:
        """Queue feedback rows; returns at once."""
        self._put(batch)

    def _put(self, batch: Batch) -> None:
        if self._closed:
            raise RuntimeError("the prediction log writer is closed")
        n = len(batch)
        with self._lock:
            self._pending.append(batch)
            self._pending_rows += n
            self.pending_rows += n
            full = self._pending_rows >= self.flush_rows
        if full and not self._wake.is_set():
            self._wake.set()  # a size flush is due: don't wait for the timer
        if self._thread is None:
            self.start()

    def _signal(self, marker: Any) -> None:
        with self._lock:
            self._pending.append(marker)
        self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write everything queued so far; True when done within ``timeout``."""
        if self._thread is None or not self._thread.is_alive():
            return self.pending_rows == 0
        marker = _Flush()
        self._signal(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 60.0) -> None:
        """Drain the queue, write every buffered row, stop the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            return
        self._signal(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("prediction log writer did not finish within %ss", timeout)

    # ------------------------------------------------------------------ writer thread

    def _take(self) -> list[Any]:
        with self._lock:
            items, self._pending = self._pending, []
            self._pending_rows = 0
        return items

    def _run(self) -> None:
        while True:
            self._wake.wait(self._wait_time())
            self._wake.clear()
            stop = False
            for item in self._take():
                if item is _STOP:
                    stop = True  # rows logged after close() began are still written
                elif isinstance(item, _Flush):
                    self._write_due(force=True)
                    item.done.set()
                else:
                    key = self._add(item)
                    if self._rows[key] >= self.flush_rows and key not in self._failed:
                        self._write(key)  # segments of ~flush_rows rows
            if stop:
                for item in self._take():  # a racing _put that passed the closed check
                    if isinstance(item, _Flush):
                        item.done.set()
                    elif item is not _STOP:
                        self._add(item)
                self._write_due(force=True)
                return
            self._write_due(force=False)

    def _wait_time(self) -> float:
        if not self._since:
            return self.poll_interval
        oldest = min(self._since.values())
        return max(0.0, min(self.poll_interval, oldest + self.flush_interval - time.monotonic()))

    def _add(self, batch: Batch) -> tuple[str, str]:
        kind = "predictions" if isinstance(batch, PredictionBatch) else "feedback"
        key = (batch.model, kind)
        self._buffers[key].append(batch)
        self._rows[key] += len(batch)
        self._since.setdefault(key, time.monotonic())
        return key

    def _write_due(self, *, force: bool) -> None:
        now = time.monotonic()
        for key in list(self._buffers):
            rows = self._rows[key]
            if not rows:
                continue
            if force or now - self._since[key] >= self.flush_interval or (
                    rows >= self.flush_rows and key not in self._failed):
                self._write(key)

    def _write(self, key: tuple[str, str]) -> None:
        model, kind = key
        batches = self._buffers[key]
        table = self._build(model, kind, batches)
        try:
            if table is not None:
                self._write_table(model, kind, table)
        except Exception as exc:  # keep the rows and retry after another interval
            log.exception("writing a %s segment of model %r failed; will retry", kind, model)
            self._since[key] = time.monotonic()
            self._failed.add(key)
            if self.failing_since is None:
                self.failing_since = time.time()
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self._on_error is not None:
                self._on_error(exc)
            return
        rows = self._rows[key]
        del self._buffers[key], self._rows[key], self._since[key]
        self._failed.discard(key)
        if not self._failed:
            self.failing_since, self.last_error = None, None
        written = 0 if table is None else table.num_rows
        self.rows_written += written
        with self._lock:
            self.pending_rows -= rows
        if self._on_written is not None and written:
            self._on_written(model, kind, written)

    def _write_table(self, model: str, kind: str, table: pa.Table) -> None:
        """``table`` as one segment per UTC day, each written atomically."""
        for day, part in _split_by_day(table):
            seq = next(self._seq)
            name = f"{segment_prefix(model, kind)}date={day}/{self.replica_id}-{seq:06d}.parquet"
            sink = pa.BufferOutputStream()
            pq.write_table(part, sink, compression="zstd")
            self.artifacts.write_named(name, sink.getvalue().to_pybytes())
            self.segments_written += 1

    def write_now(self, batch: Batch) -> bool:
        """Write ``batch`` as its own segment on the caller's thread, past the buffer.

        For a caller that must know the rows are stored before it answers (the batch
        lane's processes, ``isolation.py``). Rows that cannot be encoded are quarantined
        as on the writer thread. Returns True once the rows are stored (or quarantined);
        False when the write failed (logged, ``on_error`` called): nothing was stored and
        the caller still holds the rows.
        """
        kind = "predictions" if isinstance(batch, PredictionBatch) else "feedback"
        table = self._build(batch.model, kind, [batch])
        try:
            if table is not None:
                self._write_table(batch.model, kind, table)
        except Exception as exc:
            log.exception("writing a %s segment of model %r failed", kind, batch.model)
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self._on_error is not None:
                self._on_error(exc)
            return False
        written = 0 if table is None else table.num_rows
        self.rows_written += written
        if self._on_written is not None and written:
            self._on_written(batch.model, kind, written)
        return True

    def _build(self, model: str, kind: str, batches: list[Batch]) -> pa.Table | None:
        """The segment's table; rows that cannot be encoded are quarantined, never retried.

        Building fails only on the data (a lone surrogate in a string, say), so retrying
        would fail forever and hold every later row of the buffer back. The whole buffer is
        tried first (the normal, fast case); on failure each batch, and within a failing
        batch each row, so that only the rows at fault are set aside.
        """
        build = _prediction_table if kind == "predictions" else _feedback_table
        try:
            return build(batches)
        except Exception:
            pass
        good: list[Batch] = []
        bad: list[Batch] = []
        reason = ""
        for batch in batches:
            try:
                build([batch])
                good.append(batch)
                continue
            except Exception:
                pass
            for row in _rows(batch):
                try:
                    build([row])
                    good.append(row)
                except Exception as exc:
                    bad.append(row)
                    reason = reason or f"{type(exc).__name__}: {exc}"
        if bad:
            self._quarantine(model, kind, bad, reason)
        return build(good) if good else None

    def _quarantine(self, model: str, kind: str, rows: list[Batch], reason: str) -> None:
        """Keep the rows as JSON text (lone surrogates escaped) beside the log, and report."""
        n = sum(len(r) for r in rows)
        self.rows_quarantined += n
        seq = next(self._seq)
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        name = f"{PREFIX}/{model}/quarantine/{kind}/date={day}/{self.replica_id}-{seq:06d}.jsonl"
        text = "\n".join(json.dumps(_row_dict(r), ensure_ascii=True, default=str) for r in rows)
        try:
            self.artifacts.write_named(name, text.encode("ascii"))
        except Exception:
            log.exception("could not keep %d quarantined %s rows of model %r", n, kind, model)
            name = ""
        log.error("model %r: %d %s rows cannot be written to the log (%s); quarantined in %s",
                  model, n, kind, reason, name or "memory only (dropped)")
        if self._on_quarantine is not None:
            try:
                self._on_quarantine(model, kind, n, reason, name)
            except Exception:  # reporting must not stop the writer
                log.exception("reporting quarantined rows failed")

    @property
    def healthy(self) -> tuple[bool, str]:
        """``(True, "")``, or ``(False, why)`` while the log cannot be written."""
        if self._thread is not None and not self._thread.is_alive() and not self._closed:
            return False, "the prediction log writer thread has stopped"
        if self.failing_since is not None:
            age = time.time() - self.failing_since
            return False, (f"the prediction log cannot be written (for {age:.0f}s, "
                           f"{self.pending_rows} rows waiting): {self.last_error}")
        return True, ""


def _rows(batch: Batch) -> list[Batch]:
    """A batch as single-row batches (the error path only)."""
    out: list[Batch] = []
    for i in range(len(batch)):
        if isinstance(batch, PredictionBatch):
            out.append(PredictionBatch(
                model=batch.model, ids=batch.ids[i : i + 1], version=batch.version,
                predictions=batch.predictions[i : i + 1], scores=batch.scores[i : i + 1],
                probabilities=None if batch.probabilities is None else batch.probabilities[i : i + 1],
                features={k: v[i : i + 1] for k, v in batch.features.items()},
                latency_ms=batch.latency_ms, role=batch.role, ts_us=batch.ts_us,
            ))
        else:
            out.append(FeedbackBatch(
                model=batch.model, ids=batch.ids[i : i + 1], labels=batch.labels[i : i + 1],
                rewards=None if batch.rewards is None else batch.rewards[i : i + 1], ts_us=batch.ts_us,
            ))
    return out


def _row_dict(row: Batch) -> dict[str, Any]:
    if isinstance(row, FeedbackBatch):
        return {"request_id": list(row.ids), "ts_us": row.ts_us, "label": list(row.labels),
                "reward": None if row.rewards is None else list(row.rewards)}
    return {
        "request_id": list(row.ids), "ts_us": row.ts_us, "model_version": row.version, "role": row.role,
        "prediction": row.predictions.tolist(), "score": row.scores.tolist(),
        "features": {k: v.tolist() for k, v in row.features.items()},
    }


# ---------------------------------------------------------------------- Arrow building


def _repeat(values: list[Any], counts: np.ndarray, dtype: Any) -> np.ndarray:
    return np.repeat(np.asarray(values, dtype=dtype), counts)


def _prediction_table(batches: list[Batch]) -> pa.Table:
    """One table from many batches; batches with other feature sets are unified by name."""
    groups: dict[tuple[Any, ...], list[PredictionBatch]] = defaultdict(list)
    for b in batches:
        if not isinstance(b, PredictionBatch):
            continue
        sig = (tuple((k, v.dtype.kind) for k, v in b.features.items()), b.predictions.dtype.kind)
        groups[sig].append(b)
    tables = [_prediction_group(g) for g in groups.values()]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _prediction_group(group: list[PredictionBatch]) -> pa.Table:
    counts = np.fromiter((len(b) for b in group), dtype=np.int64, count=len(group))
    ids = list(itertools.chain.from_iterable(b.ids for b in group))
    preds = np.concatenate([b.predictions for b in group])
    if preds.dtype.kind in "fiu":
        prediction = pa.array(preds.astype(np.float64, copy=False))
    else:
        prediction = pa.array([None if p is None else str(p) for p in preds], pa.string())
    cols: dict[str, Any] = {
        "request_id": pa.array(ids, pa.string()),
        "ts": pa.array(_repeat([b.ts_us for b in group], counts, np.int64)).cast(_TS),
        "model_version": pa.array(_repeat([b.version for b in group], counts, np.int64)),
        "role": pa.array(_repeat([b.role for b in group], counts, object), pa.string()),
        "prediction": prediction,
        "score": pa.array(np.concatenate([b.scores for b in group]).astype(np.float64)),
        "probabilities": _probabilities(group),
    }
    for name in group[0].features:
        values = np.concatenate([b.features[name] for b in group])
        cols["f_" + name] = _feature_array(values)
    cols["latency_ms"] = pa.array(_repeat([b.latency_ms for b in group], counts, np.float64))
    return pa.table(cols)


def _probabilities(group: list[PredictionBatch]) -> pa.Array:
    if any(b.probabilities is None for b in group):
        rows: list[Any] = []
        for b in group:
            rows.extend([None] * len(b) if b.probabilities is None else b.probabilities.tolist())
        return pa.array(rows, _PROBA)
    proba = np.concatenate([b.probabilities for b in group if b.probabilities is not None])
    n, k = proba.shape
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(proba.reshape(-1).astype(np.float64)))


def _feature_array(values: np.ndarray) -> pa.Array:
    if values.dtype.kind in "fiub":
        return pa.array(values)
    try:
        return pa.array(values, pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed str/int categories: log as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _feedback_table(batches: list[Batch]) -> pa.Table:
    group = [b for b in batches if isinstance(b, FeedbackBatch)]
    counts = np.fromiter((len(b) for b in group), dtype=np.int64, count=len(group))
    rewards: list[float | None] = []
    for b in group:
        rewards.extend(b.rewards if b.rewards is not None else [None] * len(b))
    return pa.table(
        {
            "request_id": pa.array(list(itertools.chain.from_iterable(b.ids for b in group)), pa.string()),
            "ts": pa.array(_repeat([b.ts_us for b in group], counts, np.int64)).cast(_TS),
            "label": pa.array(list(itertools.chain.from_iterable(b.labels for b in group)), pa.string()),
            "reward": pa.array(rewards, pa.float64()),
        }
    )


def _split_by_day(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """Segments are partitioned by UTC day of ``ts`` (``date=YYYY-MM-DD``)."""
    us = table.column("ts").cast(pa.int64()).to_numpy()
    days = us // _US_PER_DAY
    first, last = int(days.min()), int(days.max())
    if first == last:
        return [(_day_name(first), table)]
    return [
        (_day_name(int(d)), table.filter(pa.array(days == d)))
        for d in np.unique(days)
    ]


def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%Y-%m-%d")
