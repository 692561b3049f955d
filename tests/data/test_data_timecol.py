"""The time column: numbers are an ordinal clock unless a unit says epoch, dates are dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelpilot.config import PilotConfig
from modelpilot.data import load_source, snapshot
from modelpilot.data.timecol import TimeColumnError, read_time_column
from modelpilot.errors import ModelpilotError


def test_integers_are_an_ordinal_clock_one_second_per_step() -> None:
    times, clock = read_time_column(pd.Series([0, 1, 5, 100_000]), "day")
    assert clock.kind == "ordinal" and clock.step_seconds == 1.0
    assert (clock.first, clock.last) == (0, 100_000)
    # 100,000 steps span 100,000 s of the loop's clock, not 100 microseconds
    assert (times.iloc[-1] - times.iloc[0]).total_seconds() == 100_000
    assert str(times.dt.tz) == "UTC" and times.iloc[0] == pd.Timestamp(0, tz="UTC")
    assert "ordinal clock" in clock.describe() and "--time-unit" in clock.describe()
    assert clock.notes == ()
    assert clock.to_dict()["kind"] == "ordinal"


def test_epoch_units() -> None:
    secs = pd.Series([1_767_225_600, 1_767_229_200])  # 2026-01-01T00:00Z and an hour later
    times, clock = read_time_column(secs, "ts", "s")
    assert list(times) == [pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-01 01:00", tz="UTC")]
    assert clock.kind == "epoch" and clock.unit == "s" and clock.first == "2026-01-01T00:00:00+00:00"
    for unit, scale in (("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        assert read_time_column((secs * int(scale)).astype(np.int64), "ts", unit)[0].equals(times)


def test_epoch_looking_numbers_read_as_ordinal_say_which_flag_reads_them_as_dates() -> None:
    _, clock = read_time_column(pd.Series([1_767_225_600, 1_767_229_200]), "ts")
    assert clock.kind == "ordinal"
    assert clock.notes == ("the numbers in 'ts' look like epoch s (2026-01-01 to 2026-01-01) but are read as an "
                           "ordinal clock: pass --time-unit s to read them as dates",)
    with pytest.raises(TimeColumnError, match=r"numbers up to 1\.76723e\+18, out of range for an ordinal clock "
                                              r".*if they are epoch ns, pass --time-unit ns"):
        read_time_column(pd.Series([1_767_225_600 * 10**9]), "ts")


def test_dates_are_used_as_they_are_and_offsets_convert_to_utc() -> None:
    naive = pd.Series(pd.date_range("2026-03-01", periods=3, freq="D"))
    times, clock = read_time_column(naive, "ts")
    assert clock.kind == "datetime" and times.iloc[0] == pd.Timestamp("2026-03-01", tz="UTC")
    # a log written across a daylight-saving change: two offsets, one instant each
    text = pd.Series(["2026-03-28T12:00:00+01:00", "2026-03-29T12:00:00+02:00"])
    times, _ = read_time_column(text, "ts")
    assert list(times) == [pd.Timestamp("2026-03-28 11:00", tz="UTC"), pd.Timestamp("2026-03-29 10:00", tz="UTC")]
    # an explicit "ordinal" (the config default) does not bother a column of dates
    assert read_time_column(naive, "ts", "ordinal")[1].kind == "datetime"


@pytest.mark.parametrize(("values", "unit", "message"), [
    (pd.Series(["2026-01-01", "soon"]), None,
     r"time column 'ts' is neither numeric nor dates: 1 values do not parse \(e\.g\. 'soon'\); fix the data, "
     r"or name a column of times with --time-col"),
    (pd.Series(["2026-01-01T00:00:00", "2026-01-02T00:00:00Z"]), None,
     r"time column 'ts' mixes times with a time zone \(e\.g\. '2026-01-02T00:00:00Z'\) and times without one "
     r"\(e\.g\. '2026-01-01T00:00:00'\).*give every value a UTC offset, or none"),
    (pd.Series([dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2, tzinfo=dt.UTC)], dtype=object), None,
     r"time column 'ts' mixes times with a time zone"),
    (pd.Series(pd.date_range("2026-01-01", periods=2, tz="UTC")), "s",
     r"time column 'ts' holds dates, so a time unit \('s'\) does not apply: it is only for numeric time "
     r"columns; remove --time-unit"),
    (pd.Series([True, False]), None, r"time column 'ts' holds true/false values, not times: name a column"),
    (pd.Series([1.0, np.nan, 3.0]), None, r"1 rows have no value in the time column 'ts': fill or drop them"),
    (pd.Series([1.0, np.inf]), None, r"time column 'ts' holds infinite values"),
    (pd.Series([1, 2]), "h", r"unknown time unit 'h' for 'ts': use one of ordinal, s, ms, us, ns"),
])
def test_bad_time_columns_name_the_column_and_the_fix(values: pd.Series, unit: str | None, message: str) -> None:
    with pytest.raises(TimeColumnError, match=message) as info:
        read_time_column(values, "ts", unit)
    assert isinstance(info.value, ModelpilotError) and "\n" not in str(info.value)


def _cfg(base: Path, **data: object) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "m", "target": "y", "time_column": "day"},
                                  "data": {"source": "d.csv", **data}}, base_dir=base)


def test_load_source_reads_the_time_column_by_data_time_unit(tmp_path: Path) -> None:
    pd.DataFrame({"day": [3, 1, 2], "x": [1.0, 2.0, 3.0], "y": [0, 1, 0]}).to_csv(tmp_path / "d.csv", index=False)
    df = load_source(_cfg(tmp_path))  # default: ordinal
    assert list(df["day"]) == [pd.Timestamp(s, unit="s", tz="UTC") for s in (3, 1, 2)]
    snap = snapshot(df, "d.csv", "day")
    assert snap.time_min == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC)

    pd.DataFrame({"day": [1_767_225_600], "x": [1.0], "y": [0]}).to_csv(tmp_path / "d.csv", index=False)
    assert load_source(_cfg(tmp_path, time_unit="s"))["day"].iloc[0] == pd.Timestamp("2026-01-01", tz="UTC")
    pd.DataFrame({"day": ["2026-01-01"], "x": [1.0], "y": [0]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(TimeColumnError, match=r"holds dates, so a time unit \('ms'\) does not apply.*remove data\.time_unit"):
        load_source(_cfg(tmp_path, time_unit="ms"))


def test_a_time_split_reads_text_times_through_the_same_rule() -> None:
    from modelpilot.training.split import split_frame

    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "y", "time_column": "ts"}})
    df = pd.DataFrame({"ts": ["2026-01-03", "2026-01-01", "2026-01-05", "2026-01-02", "2026-01-04"],
                       "y": [0, 1, 0, 1, 0]})
    sp = split_frame(df, "y", "classification", cfg)
    assert sp.method == "time" and sorted(sp.validation.tolist()) == [2, 4]  # the newest two
    df.loc[4, "ts"] = "someday"
    with pytest.raises(TimeColumnError, match=r"time column 'ts' is neither numeric nor dates.*'someday'"):
        split_frame(df, "y", "classification", cfg)
