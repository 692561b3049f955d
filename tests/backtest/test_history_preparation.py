"""How a history is prepared for replay: the errors that name the fix, rows put in time
order, rows without a target skipped and said so, and class labels kept as integers."""

from __future__ import annotations

import pandas as pd
import pytest

from modelpilot.backtest.engine import MIN_INITIAL, prepare_history, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.timecol import TimeColumnError
from modelpilot.errors import DataError


def _cfg(**model: object) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "m", "target": "y", "task": "classification", **model}})


def test_a_missing_target_or_time_column_names_the_columns_there_are() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "label": [0, 1]})
    with pytest.raises(DataError, match=r"no target column 'y': pass --target with one of x, label"):
        prepare_history(frame, _cfg())
    with pytest.raises(DataError, match=r"no time column 'ts': pass --time-col with one of x, y"):
        prepare_history(frame.rename(columns={"label": "y"}), _cfg(time_column="ts"))


def test_a_time_column_holding_one_time_cannot_order_the_replay() -> None:
    frame = pd.DataFrame({"ts": ["2026-01-01"] * 3, "x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    with pytest.raises(TimeColumnError, match="holds the same time"):
        prepare_history(frame, _cfg(time_column="ts"))


def test_rows_out_of_time_order_are_sorted_keeping_the_file_order_of_ties() -> None:
    frame = pd.DataFrame({"ts": ["2026-01-03", "2026-01-01", "2026-01-02", "2026-01-01"],
                          "x": [3.0, 1.0, 2.0, 1.5], "y": [1, 0, 1, 0]})
    out, cfg, _, warnings, skipped = prepare_history(frame, _cfg(time_column="ts"))
    assert out["x"].tolist() == [1.0, 1.5, 2.0, 3.0] and skipped == 0
    assert any("not in time order: sorted by 'ts'" in w for w in warnings)
    assert cfg.data.time_unit == "ordinal"
    _, _, _, warnings, _ = prepare_history(frame.sort_values("ts", kind="stable"), _cfg(time_column="ts"))
    assert not any("not in time order" in w for w in warnings)


def test_rows_without_a_target_are_skipped_and_labels_stay_integers() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, None, 1, None]})
    out, _, _, warnings, skipped = prepare_history(frame, _cfg())
    assert skipped == 2 and out["x"].tolist() == [1.0, 3.0]
    assert out["y"].dtype.kind == "i" and out["y"].tolist() == [0, 1]
    assert "2 rows without a value of 'y' were skipped" in warnings
    # a real-valued target with gaps stays real-valued
    real, _, _, _, _ = prepare_history(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, None, 1.5]}),
                                       _cfg(task="regression"))
    assert real["y"].dtype.kind == "f"
    with pytest.raises(DataError, match="no row has a value of the target 'y'"):
        prepare_history(pd.DataFrame({"x": [1.0], "y": [None]}), _cfg())


def test_without_a_time_column_a_non_ordinal_time_unit_is_refused() -> None:
    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "data": {"time_unit": "s"}})
    with pytest.raises(TimeColumnError, match="needs a time column to apply to: pass --time-col"):
        prepare_history(pd.DataFrame({"x": [1.0], "y": [0]}), cfg)


# --------------------------------------------------------------------------- sizes, refused before any replay


def _history(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(i) for i in range(n)], "y": [i % 2 for i in range(n)]})


def test_sizes_that_leave_no_batch_to_replay_are_refused_with_the_fix() -> None:
    with pytest.raises(DataError, match=r"--batch must be at least 1 and --label-delay at least 0"):
        run_backtest(_history(400), _cfg(), [], batch=0)
    with pytest.raises(DataError, match=r"--batch must be at least 1 and --label-delay at least 0"):
        run_backtest(_history(400), _cfg(), [], batch=10, label_delay=-1)
    # no --initial: the first model needs a batch and the replay one more
    with pytest.raises(DataError, match=r"--batch 201 is larger than the 400 usable rows allow"):
        run_backtest(_history(400), _cfg(), [], batch=201)
    with pytest.raises(DataError, match=rf"--initial {MIN_INITIAL - 1} must be at least {MIN_INITIAL}"):
        run_backtest(_history(400), _cfg(), [], batch=10, initial=MIN_INITIAL - 1)
    with pytest.raises(DataError, match=r"--initial 400 must be at least .* less than the 400 usable rows"):
        run_backtest(_history(400), _cfg(), [], batch=10, initial=400)
    with pytest.raises(DataError, match=r"--batch 101 is larger than the 100 rows left after the 300 --initial rows"):
        run_backtest(_history(400), _cfg(), [], batch=101, initial=300)
