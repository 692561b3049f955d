"""The prediction log a replay writes is the one the server writes: the score the monitors
read is the positive class's probability for two classes, the top probability for more,
missing without probabilities, and the prediction itself for regression; labels start null."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelpilot.backtest.replay import _log_rows
from modelpilot.controller.data import FEATURE_PREFIX


def _rows(task: str, pred: np.ndarray, proba: np.ndarray | None) -> pd.DataFrame:
    X = pd.DataFrame({"a": [1.0, 2.0], "b": ["u", "v"]})
    ts = pd.Series(pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True))
    return _log_rows(X, np.array(["r1", "r2"]), ts, 3, pred, proba, task)


def test_two_classes_score_the_positive_class_and_keep_every_probability() -> None:
    log = _rows("classification", np.array([1, 0]), np.array([[0.2, 0.8], [0.9, 0.1]]))
    assert log["score"].tolist() == [0.8, 0.1]
    assert log["prediction"].tolist() == ["1", "0"] and log["model_version"].tolist() == [3, 3]
    assert [list(p) for p in log["probabilities"]] == [[0.2, 0.8], [0.9, 0.1]]
    assert list(log.columns[:2]) == ["request_id", "ts"] and FEATURE_PREFIX + "a" in log.columns
    assert log["role"].tolist() == ["primary", "primary"] and log["label"].isna().all()
    assert str(log["ts"].dt.tz) == "UTC"


def test_more_classes_score_the_top_probability_and_none_leaves_it_missing() -> None:
    three = _rows("classification", np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]))
    assert three["score"].tolist() == [0.7, 0.5]
    bare = _rows("classification", np.array([2, 0]), None)
    assert bare["score"].isna().all() and bare["probabilities"].isna().all()


def test_regression_scores_the_prediction_as_a_number() -> None:
    log = _rows("regression", np.array([1.5, 2]), None)
    assert log["prediction"].tolist() == [1.5, 2.0] and log["score"].tolist() == [1.5, 2.0]
    assert log["prediction"].dtype == np.float64 and log["probabilities"].isna().all()
