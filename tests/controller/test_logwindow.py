"""The controller's view of the prediction log reads from ``since`` on, for labels and for pairs.

A real log written by the real writer: rows an hour apart, labels for all of them, and the
retired champion's shadow answers beside the champion's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from modelpilot.artifacts import open_artifacts
from modelpilot.controller.logwindow import LogWindow
from modelpilot.serving.predlog import FeedbackBatch, PredictionBatch, PredictionLogWriter

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _log(writer: PredictionLogWriter, ids: list[str], version: int, role: str, at: datetime) -> None:
    n = len(ids)
    writer.log_predictions(PredictionBatch(
        model="m", ids=ids, version=version, predictions=np.array(["1"] * n, dtype=object), scores=np.full(n, 0.8),
        probabilities=None, features={"x": np.arange(n, dtype=np.float64)}, latency_ms=1.0, role=role, ts_us=_us(at)))


def test_labelled_rows_and_pairs_are_read_from_since_on(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path / "artifacts"))
    old, new = [f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]
    writer = PredictionLogWriter(artifacts, flush_rows=1_000_000, flush_interval=3600)
    try:
        for ids, at in ((old, T0), (new, T0 + timedelta(hours=1))):
            _log(writer, ids, 2, "primary", at)
            _log(writer, ids, 1, "retired", at)
        writer.log_feedback(FeedbackBatch(model="m", ids=old + new, labels=["1"] * 20))
    finally:
        writer.close()
    window = LogWindow(artifacts, "m")
    half_way = T0 + timedelta(minutes=30)
    assert sorted(window.labelled(since=half_way)["request_id"]) == new
    assert sorted(window.labelled()["request_id"]) == sorted(old + new)  # the champion's rows, every hour
    assert sorted(window.paired(champion=2, retired=1, since=half_way)["request_id"]) == new
    assert sorted(window.paired(champion=2, retired=1)["request_id"]) == sorted(old + new)
