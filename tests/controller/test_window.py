"""The in-memory window: the same rows as filtering the whole log, for work that does not grow."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from modelpilot.controller.window import FrameWindow

BATCH = 100
START = pd.Timestamp("2026-01-01", tz="UTC")


def _batch(b: int) -> pd.DataFrame:
    ids = np.arange(b * BATCH, (b + 1) * BATCH)
    return pd.DataFrame({
        "request_id": ids.astype(str),
        "ts": START + pd.to_timedelta(ids, unit="s"),
        "model_version": 1,
        "prediction": (ids % 2).astype(str),
        "label": pd.Series([None] * BATCH, dtype=object),
    })


def _reveal(window: FrameWindow, b: int) -> None:
    rows = _batch(b)
    window.set_labels(rows["request_id"], pd.Series((np.arange(BATCH) % 3 == 0).astype(int).astype(str)))


def _naive(whole: pd.DataFrame, last_n: int | None, since: datetime | None, until: datetime | None,
           labelled: bool) -> pd.DataFrame:
    rows = whole
    if since is not None:
        rows = rows[rows["ts"] >= since]
    if until is not None:
        rows = rows[rows["ts"] < until]
    if labelled:
        rows = rows[rows["label"].notna()]
    return (rows.tail(last_n) if last_n else rows).reset_index(drop=True)


@pytest.mark.parametrize("query", [
    {"last_n": 250}, {"last_n": 5000}, {"since": START + pd.Timedelta(seconds=1234)},
    {"last_n": 40, "since": START + pd.Timedelta(seconds=1970)},
    {"until": START + pd.Timedelta(seconds=1850), "last_n": 300}, {},
])
def test_queries_return_what_filtering_the_whole_log_returns(query: dict[str, object]) -> None:
    window = FrameWindow()
    for b in range(20):
        window.append(_batch(b))
        if b >= 2:
            _reveal(window, b - 2)
    whole = window.frame
    assert len(whole) == 2000 and whole["label"].notna().sum() == 18 * BATCH
    until = query.get("until")
    got = window.window(**query)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(got, _naive(whole, query.get("last_n"), query.get("since"), until, False))  # type: ignore[arg-type]
    if until is None:
        got = window.labelled(**query)  # type: ignore[arg-type]
        pd.testing.assert_frame_equal(got, _naive(whole, query.get("last_n"), query.get("since"), None, True))  # type: ignore[arg-type]
    assert window.labelled(last_n=10)["label"].tolist() == ["1", "0", "0", "1", "0", "0", "1", "0", "0", "1"]


def test_results_are_independent_of_later_label_updates() -> None:
    window = FrameWindow()
    window.append(_batch(0))
    before = window.window()
    _reveal(window, 0)
    assert before["label"].isna().all() and window.labelled()["label"].notna().all()
    assert len(window.labelled()) == BATCH


def test_per_batch_work_does_not_grow_with_history() -> None:
    """A replay's tick: append a batch, reveal an older one, read the monitoring window, the
    labelled window and the retraining rows. The rows touched per batch settle at what the
    reads need and stay there while the history grows eightfold."""
    window = FrameWindow()
    touched = []
    for b in range(300):
        before = window.rows_scanned
        window.append(_batch(b))
        if b >= 1:
            _reveal(window, b - 1)
        now = START + pd.Timedelta(seconds=(b + 1) * BATCH)
        window.window(last_n=1000, until=now)
        window.labelled(last_n=1000)
        window.labelled(last_n=2500, since=now - pd.Timedelta(hours=1))
        touched.append(window.rows_scanned - before)
    steady = touched[36:]  # from 3,600 rows of history on (the hour of the last read) it is full
    assert max(steady) == min(steady), (min(steady), max(steady))
    assert steady[-1] <= BATCH + 1000 + 1000 + 2500 + 2 * BATCH
    assert len(window.frame) == 30_000 and steady[-1] < 30_000 // 5


def _retired_sample(b: int, version: int, every: int = 4) -> pd.DataFrame:
    """The retired champion's shadow answers to a share of batch ``b``'s requests (role ``retired``)."""
    rows = _batch(b).iloc[::every].copy()
    rows["role"] = "retired"
    rows["model_version"] = version
    rows["prediction"] = "1"
    return rows


def _with_side(b: int, champion: int, retired: int | None) -> pd.DataFrame:
    rows = _batch(b).assign(role="primary", model_version=champion)
    return pd.concat([rows, _retired_sample(b, retired)]) if retired is not None else rows


def test_paired_and_served_agree_with_filtering_the_whole_log() -> None:
    """v1 serves batches 0-9; v2 from 10 on, with v1 answering a sample in shadow until batch 17;
    labels lag two batches. Pairs and counts match a filter of every row, for any start."""
    window, side = FrameWindow(), []
    for b in range(20):
        champion, retired = (1, None) if b < 10 else (2, 1 if b < 17 else None)
        rows = _with_side(b, champion, retired)
        side.append(rows[rows["role"] == "retired"])
        window.append(rows)
        if b >= 2:
            _reveal(window, b - 2)
    whole, shadow = window.frame, pd.concat(side, ignore_index=True)
    for since in (None, START + pd.Timedelta(seconds=1000), START + pd.Timedelta(seconds=1333),
                  START + pd.Timedelta(seconds=1850), START + pd.Timedelta(seconds=5000)):
        got = window.paired(champion=2, retired=1, since=since)
        old = shadow if since is None else shadow[shadow["ts"] >= since]
        want = old[["request_id", "prediction"]].merge(
            whole[(whole["model_version"] == 2) & whole["label"].notna()][["request_id", "label", "prediction"]],
            on="request_id", suffixes=("_old", ""))
        assert got["request_id"].tolist() == want["request_id"].tolist()
        assert got["label"].tolist() == want["label"].tolist() and got["new"].tolist() == want["prediction"].tolist()
        assert set(got["old"]) <= {"1"} and len(got) == len(want)
        for version in (1, 2, 3):
            for until in (None, START + pd.Timedelta(seconds=1555)):
                rows = whole[whole["model_version"] == version]
                rows = rows if since is None else rows[rows["ts"] >= since]
                rows = rows if until is None else rows[rows["ts"] < until]
                assert window.served(version, since=since, until=until) == len(rows), (version, since, until)
    assert len(window.paired(champion=2, retired=1)) == 7 * BATCH // 4  # v1's sample of batches 10-16, all labelled
    assert window.paired(champion=1, retired=1).empty and window.paired(champion=2, retired=7).empty


def test_measuring_a_tenure_reads_only_the_rows_since_its_promotion() -> None:
    """After 280 batches of history, a promotion: the pairs and the served count of the new
    champion's tenure touch the rows since it, not the history before it."""
    window = FrameWindow()
    for b in range(300):
        promoted = b >= 280
        window.append(_with_side(b, 2 if promoted else 1, 1 if promoted else None))
        if b >= 1:
            _reveal(window, b - 1)
    tenure = START + pd.Timedelta(seconds=280 * BATCH)
    before = window.rows_scanned
    pairs = window.paired(champion=2, retired=1, since=tenure)
    served = window.served(2, since=tenure)
    assert served == 20 * BATCH and len(pairs) == 19 * BATCH // 4
    assert window.rows_scanned - before <= 20 * BATCH // 4 + BATCH  # the tenure's sample, a boundary chunk at most
