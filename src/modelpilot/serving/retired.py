"""The retired champion's shadow on the server (see :mod:`modelpilot.rollout.retired`).

After a promotion, ``costs.counterfactual.fraction`` of the champion's requests (a
deterministic sample of request ids) are also scored by the champion it replaced, for
``costs.counterfactual.period``, in the shadow scorer's background thread: the caller never
waits and the rows reach only the prediction log, with role ``retired``. The request path
does no IO: it reads what the background thread last learnt from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from modelpilot.config import CounterfactualConfig
from modelpilot.rollout import retired as rr
from modelpilot.rollout.router import retired_mask
from modelpilot.serving.cache import ModelCache
from modelpilot.serving.predlog import PredictionBatch, PredictionLogWriter

log = logging.getLogger(__name__)


class RetiredShadow:
    """Which requests the retired champion scores, and the scoring (in the shadow thread).

    Args:
        store: where the promotion records live.
        cache: loads the retired version (its LRU of versions) and predicts.
        writer: the prediction log writer.
        cfg: ``costs.counterfactual``.
        refresh_interval: seconds a record read from the store is trusted.
    """

    def __init__(self, store: Any, cache: ModelCache, writer: PredictionLogWriter, cfg: CounterfactualConfig,
                 *, refresh_interval: float = 1.0) -> None:
        self.store, self.cache, self.writer, self.cfg = store, cache, writer, cfg
        self.refresh_interval = refresh_interval
        self._records: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()
        self.scored = 0
        self.failed = 0

    def wanted(self, name: str, champion: int) -> bool:
        """Whether to hand this request to the shadow thread (no IO: the request path calls it)."""
        if self.cfg.fraction <= 0:
            return False
        entry = self._records.get(name)
        if entry is None or time.monotonic() - entry[0] > self.refresh_interval:
            return True  # the thread re-reads the record and decides
        return rr.shadowing(entry[1], champion, self.cfg.period, datetime.now(UTC))

    def _record(self, name: str, champion: int) -> dict[str, Any] | None:
        with self._lock:
            entry = self._records.get(name)
        if entry is not None and time.monotonic() - entry[0] <= self.refresh_interval:
            return entry[1]
        record = rr.get(self.store, name, champion)
        with self._lock:
            self._records[name] = (time.monotonic(), record)
        return record

    def score(self, name: str, champion: int, columns: dict[str, np.ndarray], ids: list[str]) -> None:
        """Score the sampled rows of one request with the retired champion (shadow thread)."""
        record = self._record(name, champion)
        if not rr.shadowing(record, champion, self.cfg.period, datetime.now(UTC)) or record is None:
            return
        mask = retired_mask(ids, champion, self.cfg.fraction)
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        sub = columns if len(idx) == len(ids) else {k: v[idx] for k, v in columns.items()}
        sub_ids = ids if len(idx) == len(ids) else [ids[i] for i in idx]
        start = time.perf_counter()
        try:
            model = self.cache.version(name, int(record["retired"]))
            out = self.cache.predict(model, sub)
            if len(out.labels) != len(sub_ids):
                raise ValueError(f"{len(out.labels)} predictions for {len(sub_ids)} rows")
        except Exception as exc:  # the old model's trouble must never reach a caller
            self.failed += len(sub_ids)
            log.info("retired v%s of %s could not score its shadow sample: %s", record["retired"], name, exc)
            return
        self.scored += len(sub_ids)
        self.writer.log_predictions(PredictionBatch(
            model=name, ids=sub_ids, version=model.version, predictions=out.labels, scores=out.scores,
            probabilities=out.probabilities, features=sub, latency_ms=(time.perf_counter() - start) * 1000.0,
            role=rr.ROLE,
        ))
