"""The prediction log: flushing by size and time, reading and joining, S3, batch scoring."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_helpers import CATEGORICAL, NUMERIC, Env, make_frame

from modelpilot.artifacts import ArtifactStore, open_artifacts
from modelpilot.errors import DataError
from modelpilot.serving import (
    FeedbackBatch,
    PredictionBatch,
    PredictionLogReader,
    PredictionLogWriter,
    predict_batch,
)
from modelpilot.serving.predlog import now_us


def batch(ids: list[str], version: int = 1, ts_us: int | None = None, role: str = "primary") -> PredictionBatch:
    n = len(ids)
    proba = np.column_stack([np.linspace(0.1, 0.9, n), 1 - np.linspace(0.1, 0.9, n)])
    labels = np.empty(n, dtype=object)
    labels[:] = [int(x) for x in proba.argmax(1)]
    plan = np.empty(n, dtype=object)
    plan[:] = ["pro", None] * (n // 2) + ["max"] * (n % 2)
    return PredictionBatch(
        model="m", ids=ids, version=version, predictions=labels, scores=proba[:, 1],
        probabilities=proba, features={"age": np.arange(n, dtype=float), "plan": plan},
        latency_ms=1.5, role=role, ts_us=ts_us if ts_us is not None else now_us(),
    )


def segments(artifacts: ArtifactStore, kind: str = "predictions") -> list[str]:
    return artifacts.list(f"predlog/m/{kind}/")


def test_flush_by_size(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path))
    writer = PredictionLogWriter(artifacts, flush_rows=10, flush_interval=3600, replica_id="r1")
    for k in range(5):
        writer.log_predictions(batch([f"{k}-{i}" for i in range(5)]))
    deadline = time.monotonic() + 10
    while len(segments(artifacts)) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    # 25 rows in: two segments of 10 rows written without any flush() or close(), 5 wait
    while writer.rows_written < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    keys = segments(artifacts)
    assert len(keys) == 2 and writer.rows_written == 20
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert keys[0] == f"predlog/m/predictions/date={day}/r1-000000.parquet"
    writer.close()
    assert PredictionLogReader(artifacts, "m").count() == 25


def test_flush_by_time_and_close(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path))
    writer = PredictionLogWriter(artifacts, flush_rows=10_000, flush_interval=0.3)
    writer.log_predictions(batch(["a", "b"]))
    time.sleep(0.1)
    assert segments(artifacts) == []  # neither size nor time reached yet
    deadline = time.monotonic() + 5
    while not segments(artifacts) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(segments(artifacts)) == 1
    writer.log_predictions(batch(["c"]))
    writer.log_feedback(FeedbackBatch(model="m", ids=["a"], labels=["1"], rewards=[2.0]))
    writer.close()  # drains both buffers
    reader = PredictionLogReader(artifacts, "m")
    assert reader.count() == 3 and reader.count("feedback") == 1
    with pytest.raises(RuntimeError, match="closed"):
        writer.log_predictions(batch(["d"]))


def test_reader_filters_and_join(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path))
    writer = PredictionLogWriter(artifacts, flush_rows=10_000, flush_interval=3600)
    old = now_us() - 3 * 86_400_000_000  # three days ago: another date partition
    writer.log_predictions(batch(["o1", "o2"], version=1, ts_us=old))
    writer.log_predictions(batch(["n1", "n2", "n3"], version=2))
    writer.log_predictions(batch(["s1"], version=3, role="shadow"))
    writer.log_feedback(FeedbackBatch(model="m", ids=["n1", "o1"], labels=["0", "1"], ts_us=now_us() - 10))
    writer.log_feedback(FeedbackBatch(model="m", ids=["n1"], labels=["1"], rewards=[0.5]))
    writer.close()
    reader = PredictionLogReader(artifacts, "m")
    assert len({k.split("/")[3] for k in segments(artifacts)}) == 2  # two date= folders
    assert reader.predictions()["request_id"].tolist() == ["o1", "o2", "n1", "n2", "n3"]
    recent = reader.predictions(since=datetime.now(UTC) - timedelta(days=1))
    assert sorted(recent["request_id"]) == ["n1", "n2", "n3"]
    assert reader.predictions(version=1)["request_id"].tolist() == ["o1", "o2"]
    assert len(reader.predictions(last_n=2)) == 2
    assert reader.predictions(role="shadow")["request_id"].tolist() == ["s1"]
    assert len(reader.predictions(role=None)) == 6
    df = reader.predictions(version=2)
    assert df["f_plan"].fillna("<null>").tolist() == ["pro", "<null>", "max"]
    assert df["prediction"].tolist() == ["1", "0", "0"]  # class labels as strings
    joined = reader.joined().set_index("request_id")
    assert joined.loc["n1", "label"] == "1" and joined.loc["n1", "reward"] == 0.5  # the latest
    assert joined.loc["o1", "label"] == "1" and pd.isna(joined.loc["n2", "label"])
    assert "s1" not in joined.index
    assert reader.known_ids(["n1", "zz", "o2"]) == {"n1", "o2"}
    assert len(reader.feedback()) == 3


def test_known_ids_reads_each_segment_once_whatever_the_log_holds(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path))
    writer = PredictionLogWriter(artifacts, flush_rows=2, flush_interval=3600)
    for i in range(20):  # 20 old segments of 2 ids each
        writer.log_predictions(batch([f"old{i}a", f"old{i}b"]))
    writer.flush()
    reader = PredictionLogReader(artifacts, "m")
    assert reader.known_ids(["old3a", "old19b", "never"]) == {"old3a", "old19b"}
    assert reader.segments_indexed == len(segments(artifacts)) >= 20
    before = reader.segments_indexed
    for _ in range(5):  # feedback for unseen ids, with nothing new in the log: nothing is read
        assert reader.known_ids(["still-never"]) == set()
    assert reader.segments_indexed == before
    writer.log_predictions(batch(["new1", "new2"]))
    writer.flush()
    assert reader.known_ids(["new2", "old0a", "nope"]) == {"new2", "old0a"}
    assert reader.segments_indexed == before + 1  # only the new segment, not the 20 old ones
    writer.close()


def test_empty_log_reads_empty(tmp_path: Path) -> None:
    reader = PredictionLogReader(open_artifacts(str(tmp_path)), "nothing")
    assert reader.predictions().empty and reader.joined().empty and reader.count() == 0
    assert reader.known_ids(["a"]) == set()


@pytest.mark.s3
def test_log_on_s3(tmp_path: Path) -> None:
    from modelpilot.testing.s3 import moto_s3

    with moto_s3(bucket="predlog-test") as s3:
        artifacts = open_artifacts(s3.url("art"), s3.options)
        writer = PredictionLogWriter(artifacts, flush_rows=10_000, flush_interval=3600)
        writer.log_predictions(batch(["a", "b", "c"]))
        writer.log_feedback(FeedbackBatch(model="m", ids=["b"], labels=["1"]))
        writer.close()
        assert all(k.endswith(".parquet") for k in segments(artifacts))
        reader = PredictionLogReader(artifacts, "m")
        joined = reader.joined().set_index("request_id")
        assert joined.loc["b", "label"] == "1" and reader.count() == 3
        assert reader.known_ids(["a", "x"]) == {"a"}


def test_batch_predict_file(env: Env, tmp_path: Path) -> None:
    frame = make_frame(300, seed=5)
    frame["customer_id"] = [f"c{i}" for i in range(300)]
    frame.loc[3, "age"] = np.nan
    frame.to_parquet(tmp_path / "in.parquet")
    cfg = env.cfg.model_copy(update={"model": env.cfg.model.model_copy(update={"id_column": "customer_id"})})
    out = predict_batch(cfg, env.store, env.artifacts, tmp_path / "in.parquet", tmp_path / "out.csv")
    assert out["rows"] == 300 and out["logged"] == 300 and out["version"] == 1
    scored = pd.read_csv(tmp_path / "out.csv")
    assert {"prediction", "score", "proba_0", "proba_1", "request_id"} <= set(scored.columns)
    pipe = env.artifacts  # noqa: F841
    log = PredictionLogReader(env.artifacts, "churn").predictions()
    assert sorted(log["request_id"]) == sorted(frame["customer_id"])
    np.testing.assert_allclose(
        log.set_index("request_id").loc[scored["request_id"], "score"], scored["score"]
    )
    with pytest.raises(DataError, match=r"lacks the feature column\(s\) \['region'\]"):
        frame.drop(columns="region").to_csv(tmp_path / "bad.csv", index=False)
        predict_batch(cfg, env.store, env.artifacts, tmp_path / "bad.csv", tmp_path / "o.parquet")
    with pytest.raises(DataError, match="no input file"):
        predict_batch(cfg, env.store, env.artifacts, tmp_path / "missing.csv", tmp_path / "o.csv")
    assert NUMERIC and CATEGORICAL


def test_a_row_the_log_cannot_encode_is_quarantined_and_blocks_nothing(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path))
    seen: list[tuple[str, str, int, str, str]] = []
    writer = PredictionLogWriter(artifacts, flush_rows=10_000, flush_interval=3600,
                                 on_quarantine=lambda *a: seen.append(a))
    writer.log_feedback(FeedbackBatch(model="m", ids=["a", "b", "c"], labels=["1", "\ud800", "0"]))
    writer.log_predictions(batch(["p1", "p\udc00", "p3"]))  # a lone surrogate in an id
    assert writer.flush(10)
    writer.log_feedback(FeedbackBatch(model="m", ids=["d"], labels=["1"]))  # later labels go through
    assert writer.flush(10)
    reader = PredictionLogReader(artifacts, "m")
    assert reader.feedback()["request_id"].tolist() == ["a", "c", "d"]
    assert sorted(reader.predictions()["request_id"]) == ["p1", "p3"]
    assert writer.pending_rows == 0 and writer.rows_quarantined == 2 and writer.healthy == (True, "")
    assert [(s[0], s[1], s[2]) for s in seen] == [("m", "feedback", 1), ("m", "predictions", 1)]
    assert "surrogates not allowed" in seen[0][3]
    kept = artifacts.read_named(seen[0][4]).decode("ascii")
    assert '"request_id": ["b"]' in kept and '"label": ["\\ud800"]' in kept  # escaped, not lost
    writer.close()


def test_a_log_that_cannot_be_written_makes_the_writer_unhealthy(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path))
    writer = PredictionLogWriter(artifacts, flush_rows=10_000, flush_interval=0.05)
    blocker = tmp_path / "predlog" / "m"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the model's folder should be")  # every write fails
    writer.log_predictions(batch(["a", "b"]))
    deadline = time.monotonic() + 10
    while writer.healthy[0] and time.monotonic() < deadline:
        time.sleep(0.02)
    ok, reason = writer.healthy
    assert not ok and "cannot be written" in reason and "2 rows waiting" in reason
    blocker.unlink()  # the store recovers: the retry writes the rows, health returns
    while not writer.healthy[0] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.healthy == (True, "") and writer.rows_written == 2
    writer.close()


def test_write_now_stores_one_batch_at_once_or_says_it_did_not(tmp_path: Path) -> None:
    artifacts = open_artifacts(str(tmp_path))
    written: list[tuple[str, str, int]] = []
    errors: list[BaseException] = []
    writer = PredictionLogWriter(artifacts, replica_id="r1-lane", flush_rows=10_000, flush_interval=3600,
                                 on_written=lambda *a: written.append(a), on_error=errors.append)
    assert writer.write_now(batch(["a", "b", "c"]))  # no thread, no flush: stored on return
    assert [k.rsplit("/", 1)[-1] for k in segments(artifacts)] == ["r1-lane-000000.parquet"]
    df = PredictionLogReader(artifacts, "m").predictions()
    assert df["request_id"].tolist() == ["a", "b", "c"]
    assert df["f_plan"].fillna("-").tolist() == ["pro", "-", "max"]
    assert written == [("m", "predictions", 3)] and writer.rows_written == 3 and writer.pending_rows == 0

    moved = tmp_path / "kept"
    (tmp_path / "predlog" / "m").rename(moved)
    (tmp_path / "predlog" / "m").write_text("a file where the model's folder should be")
    assert not writer.write_now(batch(["d"]))  # refused: nothing stored, the caller keeps the rows
    assert len(errors) == 1 and writer.rows_written == 3 and len(written) == 1
    (tmp_path / "predlog" / "m").unlink()
    moved.rename(tmp_path / "predlog" / "m")

    assert writer.write_now(batch(["e\udc00", "f"]))  # a row that cannot be encoded: quarantined
    assert writer.rows_quarantined == 1 and writer.rows_written == 4
    assert sorted(PredictionLogReader(artifacts, "m").predictions()["request_id"]) == ["a", "b", "c", "f"]
