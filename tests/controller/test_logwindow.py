"""The controller's view of the prediction log: read from ``since`` on, for labels and for pairs;
labels the serving version cannot use count as missing.

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
from modelpilot.store import Store

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


def test_labels_the_serving_version_cannot_use_count_as_missing(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path / "artifacts"))
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        known = store.register_version("m", run_id=None, artifact_key="k", reference_key=None, signature=[],
                                         task="classification", classes=["0", "1"], metrics={}, lineage={}).version
        writer = PredictionLogWriter(artifacts, flush_rows=1_000_000, flush_interval=3600)
        try:
            _log(writer, [f"k{i}" for i in range(6)], known, "primary", T0)
            _log(writer, [f"u{i}" for i in range(4)], known + 1, "primary", T0)  # a version the store does not know
            writer.log_feedback(FeedbackBatch(model="m", ids=[f"k{i}" for i in range(6)] + [f"u{i}" for i in range(4)],
                                              labels=["1", "7", "0", "7", "1", "x"] + ["7"] * 4))
        finally:
            writer.close()
        window = LogWindow(artifacts, "m", store=store)
        rows = window.labelled()
        assert sorted(rows["request_id"]) == ["k0", "k2", "k4", "u0", "u1", "u2", "u3"]
        assert window.unusable_labels == 3
        assert LogWindow(artifacts, "m").labelled().shape[0] == 10  # without the store every label counts
    finally:
        store.close()
