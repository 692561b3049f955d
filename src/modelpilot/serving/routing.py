"""Serving during a rollout: which rows the challenger answers, and shadow scoring.

:func:`answer` routes each instance of a request with the pure router
(:func:`modelpilot.rollout.router.challenger_mask`), lets the challenger answer its rows
(in the threadpool: an unproven model must not stall the event loop) and the champion the
rest. A challenger that raises or returns garbage (wrong length, non-finite scores) does
not fail the request: the champion answers those rows too, and the failure is logged as
rows with role ``error`` — the canary's and A/B's error rate.

:class:`ShadowScorer` runs the challenger on a copy of the champion's traffic in one
background thread, after the response was built: the caller never waits, a full queue
drops the copy (counted), and whatever the challenger does — raise, hang, return garbage —
only ever reaches the prediction log (role ``shadow``, or ``error``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from modelpilot.rollout.router import challenger_mask
from modelpilot.serving.cache import ActiveRollout, LoadedModel, ModelCache, Prediction
from modelpilot.serving.predlog import PredictionBatch, PredictionLogWriter

log = logging.getLogger(__name__)


def check_output(out: Prediction, n: int) -> Prediction:
    """``out`` if it is a usable answer for ``n`` rows; otherwise raise ValueError."""
    if len(out.labels) != n or len(out.scores) != n:
        raise ValueError(f"the model returned {len(out.labels)} predictions for {n} rows")
    if out.probabilities is not None:
        p = np.asarray(out.probabilities, dtype=np.float64)
        if p.shape[0] != n or not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise ValueError("the model returned probabilities that are not finite values in [0, 1]")
    elif out.labels.dtype.kind == "f" and not np.isfinite(out.labels).all():
        raise ValueError("the model returned non-finite predictions")
    return out


def error_batch(model_name: str, challenger: LoadedModel, ids: list[str], columns: dict[str, np.ndarray],
                latency_ms: float) -> PredictionBatch:
    """Log rows recording that ``challenger`` failed on these requests (role ``error``)."""
    n = len(ids)
    if challenger.classes is None:
        preds = np.full(n, np.nan)
    else:
        preds = np.empty(n, dtype=object)
    return PredictionBatch(model=model_name, ids=ids, version=challenger.version, predictions=preds,
                           scores=np.full(n, np.nan), probabilities=None, features=columns,
                           latency_ms=latency_ms, role="error")


def _take(columns: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in columns.items()}


@dataclass
class Answer:
    """The merged answer of a routed request and what to log."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    version: int
    versions: list[int] | None  # per instance, only when more than one version answered
    parts: list[tuple[LoadedModel, np.ndarray, Prediction]]
    failed: np.ndarray | None  # row positions the challenger failed on


def routing_keys(columns: dict[str, np.ndarray], ids: list[str], key_field: str | None) -> list[str]:
    """The routing key of each instance: the configured field's value, else the request id."""
    if key_field and key_field in columns:
        return [str(v) for v in columns[key_field].tolist()]
    return ids


async def answer(cache: ModelCache, champion: LoadedModel, rollout: ActiveRollout,
                 columns: dict[str, np.ndarray], ids: list[str], key_field: str | None) -> Answer:
    """Predict a request during an A/B or canary rollout (see the module docstring)."""
    n = len(ids)
    mask = challenger_mask(routing_keys(columns, ids, key_field), rollout.state)
    failed = None
    parts: list[tuple[LoadedModel, np.ndarray, Prediction]] = []
    if mask.any():
        idx = np.flatnonzero(mask)
        sub = columns if len(idx) == n else _take(columns, idx)
        try:
            out = await run_in_threadpool(cache.predict, rollout.challenger, sub)
            parts.append((rollout.challenger, idx, check_output(out, len(idx))))
        except Exception as exc:  # the champion answers instead; the failure is logged
            log.warning("challenger v%s failed on %d rows: %s", rollout.challenger.version, len(idx), exc)
            failed, mask = idx, np.zeros(n, dtype=bool)
    rest = np.flatnonzero(~mask)
    if len(rest):
        sub = columns if len(rest) == n else _take(columns, rest)
        parts.append((champion, rest, cache.predict(champion, sub)))
    if len(parts) == 1:
        model, _, out = parts[0]
        return Answer(out.labels, out.probabilities, model.version, None, parts, failed)
    first = parts[0][2]
    labels = np.empty(n, dtype=first.labels.dtype if all(p.labels.dtype == first.labels.dtype for _, _, p in parts) else object)
    versions = np.empty(n, dtype=np.int64)
    proba = None
    widths = {-1 if p.probabilities is None else int(p.probabilities.shape[1]) for _, _, p in parts}
    if len(widths) == 1 and -1 not in widths:
        proba = np.empty((n, widths.pop()), dtype=np.float64)
    for model, idx, out in parts:
        labels[idx] = out.labels
        versions[idx] = model.version
        if proba is not None and out.probabilities is not None:
            proba[idx] = out.probabilities
    vlist = versions.tolist()
    return Answer(labels, proba, int(vlist[0]), vlist, parts, failed)


class ShadowScorer:
    """Scores copies of requests with a challenger in one background thread.

    Args:
        cache: where the fault injector (tests) and predict live.
        writer: the prediction log writer (role ``shadow`` / ``error`` rows).
        capacity: copies waiting at most; beyond it a copy is dropped and counted.
    """

    def __init__(self, cache: ModelCache, writer: PredictionLogWriter, *, capacity: int = 1000,
                 retired: Any = None) -> None:
        self.cache, self.writer = cache, writer
        self.retired = retired  # a serving.retired.RetiredShadow, or None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.scored = 0
        self.failed = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
            self._thread.start()

    def submit(self, name: str, challenger: LoadedModel, columns: dict[str, np.ndarray], ids: list[str]) -> None:
        """Queue a copy; returns at once (drops it when the queue is full)."""
        try:
            self._queue.put_nowait((name, challenger, columns, ids))
        except queue.Full:
            self.dropped += len(ids)

    def submit_retired(self, name: str, champion: int, columns: dict[str, np.ndarray], ids: list[str]) -> None:
        """Queue a request for the retired champion's shadow sample (serving/retired.py)."""
        if self.retired is None:
            return
        try:
            self._queue.put_nowait(("retired", name, champion, columns, ids))
        except queue.Full:
            self.dropped += len(ids)

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until every queued copy is scored (tests, shutdown); True when done."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self.join(timeout)
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if item[0] == "retired":
                    self._score_retired(*item[1:])
                else:
                    self._score(*item)
            finally:
                self._queue.task_done()

    def _score_retired(self, name: str, champion: int, columns: dict[str, np.ndarray], ids: list[str]) -> None:
        try:
            self.retired.score(name, champion, columns, ids)
        except Exception as exc:  # never let the shadow thread die
            log.warning("retired shadow of %s failed: %s", name, exc)

    def _score(self, name: str, challenger: LoadedModel, columns: dict[str, np.ndarray], ids: list[str]) -> None:
        start = time.perf_counter()
        try:
            out = check_output(self.cache.predict(challenger, columns), len(ids))
        except Exception as exc:
            self.failed += len(ids)
            log.info("shadow challenger v%s failed: %s", challenger.version, exc)
            latency = (time.perf_counter() - start) * 1000.0
            self.writer.log_predictions(error_batch(name, challenger, ids, columns, latency))
            return
        self.scored += len(ids)
        self.writer.log_predictions(PredictionBatch(
            model=name, ids=ids, version=challenger.version, predictions=out.labels, scores=out.scores,
            probabilities=out.probabilities, features=columns, latency_ms=(time.perf_counter() - start) * 1000.0,
            role="shadow",
        ))
