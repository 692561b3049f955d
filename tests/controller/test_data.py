"""Direct tests of the retraining data: change points, per-row errors, and the train/holdout split.

The rows carry an ``id`` so every assertion is about *which* rows went where: the gate's
holdout never overlaps the training rows, rows from before a detected change stay out of
both, and a bad segment is drawn ``upsample_factor`` times.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.config import PilotConfig
from modelpilot.controller.data import (
    WaitForData,
    log_to_frame,
    row_errors,
    select_retraining_data,
)
from modelpilot.errors import DataError


def make_cfg(**retraining: Any) -> PilotConfig:
    return PilotConfig.from_dict({
        "model": {"name": "m", "target": "y", "time_column": "ts", "id_column": "id", "segments": ["region"]},
        "retraining": {"recent_rows": 400, "history_fraction": 0.25, "holdout_fraction": 0.25,
                       "min_rows_after_change": 100, **retraining},
    })


def labelled(n: int, prefix: str = "L", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"{prefix}{i:05d}" for i in range(n)],
        "ts": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC"),
        "x": rng.normal(size=n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "y": rng.integers(0, 2, n),
    })


# --------------------------------------------------------------------------- the split


def test_the_holdout_is_the_newest_recent_rows_and_never_trained_on() -> None:
    rows = labelled(1000)
    history = labelled(2000, prefix="H", seed=1)
    data = select_retraining_data(make_cfg(), rows, history=history, bad_segments=[("region", "north")], seed=3)
    train_ids, holdout_ids = set(data.train["id"]), set(data.holdout["id"])
    assert train_ids.isdisjoint(holdout_ids)
    # the holdout is the newest 25 % of the 400 recent rows: ids 900..999, in time order
    assert data.holdout["id"].tolist() == [f"L{i:05d}" for i in range(900, 1000)]
    trained_traffic = data.train[data.train["id"].str.startswith("L")]
    assert trained_traffic["ts"].max() < data.holdout["ts"].min()
    assert data.info["holdout_rows"] == 100 and data.info["recent_rows"] == 300
    # the recent rows before the holdout are all trained on
    assert {f"L{i:05d}" for i in range(600, 900)} <= train_ids


def test_history_makes_up_the_configured_fraction_of_the_training_rows() -> None:
    rows = labelled(1000)
    history = labelled(2000, prefix="H", seed=1)
    data = select_retraining_data(make_cfg(upsample_segments=False), rows, history=history, seed=3)
    older = data.train[~data.train["id"].isin([f"L{i:05d}" for i in range(600, 900)])]
    assert len(data.train) == 400 and len(older) == 100 == data.info["history_rows"]  # 0.25 of 400
    # older labelled traffic and the configured source share the pool
    assert older["id"].str.startswith("L").any() and older["id"].str.startswith("H").any()
    none = select_retraining_data(make_cfg(history_fraction=0.0, upsample_segments=False), rows, history=history)
    assert len(none.train) == 300 and none.info["history_rows"] == 0


def test_rows_before_a_change_point_are_excluded_from_training_and_holdout() -> None:
    rows = labelled(1000)
    history = labelled(2000, prefix="H", seed=1)
    data = select_retraining_data(make_cfg(), rows, history=history, change_at=700, seed=3)
    used = pd.concat([data.train["id"], data.holdout["id"]])
    assert used.str.startswith("L").all(), "the configured source predates the change: it must stay out"
    assert (used.str[1:].astype(int) >= 700).all()
    assert data.info["change_point_rows_ago"] == 300 and data.info["history_rows"] == 0
    assert len(data.holdout) == 75 and len(set(data.train["id"])) == 225


def test_a_retrain_waits_for_enough_rows_after_the_change() -> None:
    rows = labelled(1000)
    cfg = make_cfg(min_rows_after_change=100)
    select_retraining_data(cfg, rows, history=None, change_at=900)  # exactly 100 after: enough
    with pytest.raises(WaitForData, match="rose 99 labelled rows ago; waiting for 100 rows"):
        select_retraining_data(cfg, rows, history=None, change_at=901)


def test_bad_segments_are_drawn_upsample_factor_times() -> None:
    rows = labelled(1000)
    plain = select_retraining_data(make_cfg(history_fraction=0.0), rows, history=None, seed=3)
    bad = select_retraining_data(make_cfg(history_fraction=0.0, upsample_factor=3.0), rows, history=None,
                                 bad_segments=[("region", "north"), ("missing", "x")], seed=3)
    north_before = int((plain.train["region"] == "north").sum())
    assert north_before > 20
    assert int((bad.train["region"] == "north").sum()) == 3 * north_before
    assert bad.info["upsampled"] == {"region=north": 2 * north_before}
    others = bad.train[bad.train["region"] != "north"]
    assert len(others) == len(plain.train) - north_before  # the other segments are untouched
    assert set(bad.train["id"]).isdisjoint(bad.holdout["id"])
    assert bad.holdout.equals(plain.holdout)  # the holdout is never upsampled
    off = select_retraining_data(make_cfg(history_fraction=0.0, upsample_segments=False, upsample_factor=3.0),
                                 rows, history=None, bad_segments=[("region", "north")], seed=3)
    assert off.info["upsampled"] == {} and len(off.train) == len(plain.train)


def test_too_few_labelled_rows_is_a_data_error_with_the_fix() -> None:
    cfg = make_cfg()
    select_retraining_data(cfg, labelled(38), history=None)  # 10 held out, 28 to train on
    with pytest.raises(DataError, match="only 37 labelled rows"):
        select_retraining_data(cfg, labelled(37), history=None)  # 9 would be held out
    few_train = make_cfg(holdout_fraction=0.75)
    select_retraining_data(few_train, labelled(40), history=None)  # 30 held out, 10 to train on
    with pytest.raises(DataError, match="send more labels to /feedback or lower retraining.holdout_fraction"):
        select_retraining_data(few_train, labelled(37), history=None)  # 28 held out, 9 to train on


def test_regression_errors_are_scaled_by_their_median_and_bounded() -> None:
    rows = pd.DataFrame({"prediction": [1.0, 2.0, 3.0, 4.0, 100.0], "label": ["2", "2", "5", "5", "0"]})
    errors = row_errors(rows, "regression")
    # squared errors 1, 0, 4, 1, 10000; median 1
    assert errors.tolist() == [1.0, 0.0, 4.0, 1.0, 10.0]


def test_classification_errors_are_one_for_a_wrong_class() -> None:
    rows = pd.DataFrame({"prediction": ["1", "0", "1", "yes"], "label": ["1", "1", "0", "yes"]})
    assert row_errors(rows, "classification").tolist() == [0.0, 1.0, 1.0, 0.0]


def test_log_rows_become_the_source_schema_with_the_champions_classes() -> None:
    cfg = make_cfg()
    log = pd.DataFrame({"request_id": ["a", "b"], "ts": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
                        "f_x": [1.0, 2.0], "f_region": ["north", "south"], "label": ["1", "0"]})
    frame = log_to_frame(log, cfg, classes=[0, 1])
    assert frame.to_dict("list") == {"x": [1.0, 2.0], "region": ["north", "south"], "y": [1, 0],
                                     "ts": list(log["ts"]), "id": ["a", "b"]}
    with pytest.raises(DataError, match=r"feedback labels \['2'\] are not classes of the champion"):
        log_to_frame(log.assign(label=["1", "2"]), cfg, classes=[0, 1])
