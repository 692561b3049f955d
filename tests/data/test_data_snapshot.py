"""Snapshot hashes: stable, order sensitive, schema aware; time ranges in UTC."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from modelpilot.data import DatasetSnapshot, load_path, snapshot, synth
from modelpilot.errors import DataError


@pytest.fixture
def df() -> pd.DataFrame:
    return synth.customers(500, seed=3)


def test_same_data_same_hash_across_processes(df: pd.DataFrame, tmp_path: Path) -> None:
    df.to_parquet(tmp_path / "d.parquet")
    here = snapshot(load_path(tmp_path / "d.parquet"), "d", "ts").hash
    code = (
        "from modelpilot.data import snapshot, load_path; import sys; "
        "print(snapshot(load_path(sys.argv[1]), 'd', 'ts').hash)"
    )
    # a fresh interpreter has a different str hash seed: the digest must not depend on it
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.parquet")],
                         capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == here
    assert snapshot(df.copy(), "other source", None).hash == here
    assert len(here) == 64


def test_row_order_matters_index_does_not(df: pd.DataFrame) -> None:
    h = snapshot(df, "s").hash
    assert snapshot(df.iloc[::-1].reset_index(drop=True), "s").hash != h
    assert snapshot(df.set_axis(range(100, 100 + len(df))), "s").hash == h


def test_values_names_and_dtypes_change_hash(df: pd.DataFrame) -> None:
    h = snapshot(df, "s").hash
    changed = df.copy()
    changed.loc[7, "monthly_spend"] += 0.01
    assert snapshot(changed, "s").hash != h
    assert snapshot(df.rename(columns={"age": "age_years"}), "s").hash != h
    assert snapshot(df.astype({"support_calls": "float64"}), "s").hash != h
    assert snapshot(df.iloc[:-1], "s").hash != h


def test_snapshot_fields_and_time_range(df: pd.DataFrame) -> None:
    s = snapshot(df, "data/customers.parquet", "ts")
    assert isinstance(s, DatasetSnapshot)
    assert s.rows == 500 and s.source == "data/customers.parquet"
    assert s.schema["plan"] == str(df["plan"].dtype) and s.schema["churned"] == "int64"
    assert s.time_min == df["ts"].min().to_pydatetime() and s.time_max == df["ts"].max().to_pydatetime()
    assert s.time_min is not None and s.time_min.tzinfo is not None
    assert s.to_dict()["time_min"].startswith("2026-01-01")
    with pytest.raises(AttributeError):
        s.rows = 3  # type: ignore[misc]


def test_naive_and_text_times_are_utc() -> None:
    naive = pd.DataFrame({"t": pd.to_datetime(["2026-03-01 10:00", "2026-03-02 12:00"])})
    s = snapshot(naive, "s", "t")
    assert s.time_min == datetime(2026, 3, 1, 10, tzinfo=UTC)
    text = pd.DataFrame({"t": ["2026-03-02T12:00:00+02:00", "2026-03-01T10:00:00+00:00"]})
    assert snapshot(text, "s", "t").time_max == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_unknown_time_column(df: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"column 'tss' named in model\.time_column is not in the data \(did you mean 'ts'\?\)"):
        snapshot(df, "s", "tss")


def test_unhashable_cells_still_hash() -> None:
    a = pd.DataFrame({"tags": [["a"], ["b", "c"]]})
    b = pd.DataFrame({"tags": [["a"], ["b", "d"]]})
    assert snapshot(a, "s").hash == snapshot(a.copy(), "s").hash != snapshot(b, "s").hash
