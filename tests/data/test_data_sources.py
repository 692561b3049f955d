"""Reading data: files, globs, folders, DuckDB queries and the errors users meet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelpilot.config import PilotConfig
from modelpilot.data import load_path, load_source, run_query
from modelpilot.errors import DataError


def _cfg(base: Path, **data: object) -> PilotConfig:
    return PilotConfig.from_dict(
        {"model": {"name": "m", "target": "y", "time_column": "ts"}, "data": data}, base_dir=base
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "ts": pd.date_range("2026-01-01", periods=4, freq="h", tz="UTC"),
        "x": [1.0, 2.0, 3.0, 4.0],
        "c": ["a", "b", "a", "b"],
        "y": [0, 1, 0, 1],
    })


def test_parquet_round_trip_keeps_dtypes(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(tmp_path / "d.parquet")
    pd.testing.assert_frame_equal(load_path(tmp_path / "d.parquet"), frame)


def test_csv_source_relative_to_base_dir_parses_time_column(tmp_path: Path, frame: pd.DataFrame,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "d.csv", index=False)
    monkeypatch.chdir(tmp_path.parent)  # the working directory must not matter
    df = load_source(_cfg(tmp_path, source="data/d.csv"))
    assert str(df["ts"].dtype) .startswith("datetime64")
    assert df["ts"].dt.tz is not None
    assert df["ts"].iloc[0] == pd.Timestamp("2026-01-01", tz="UTC")
    assert df["x"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_glob_and_folder_concatenate_in_name_order(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.iloc[2:].to_parquet(tmp_path / "part-2.parquet")
    frame.iloc[:2].to_parquet(tmp_path / "part-1.parquet")
    by_glob = load_source(_cfg(tmp_path, source="part-*.parquet"))
    assert by_glob["x"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert by_glob.index.tolist() == [0, 1, 2, 3]
    assert load_path(tmp_path)["x"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_missing_file_names_path_and_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no data at .*nope\.parquet: check data\.source in pilot\.yaml.*modelpilot init"):
        load_source(_cfg(tmp_path, source="nope.parquet"))
    with pytest.raises(DataError, match=r"no data at .*\*\.csv"):
        load_path(tmp_path / "*.csv")


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'.*\.parquet, \.pq, \.csv"):
        load_path(tmp_path / "d.xlsx")


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "d.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"could not read .*d\.parquet as Parquet: .*valid, complete Parquet"):
        load_path(tmp_path / "d.parquet")
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.csv is empty"):
        load_path(tmp_path / "e.csv")


def test_empty_dataset_and_no_source(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("ts,x,y\n")
    with pytest.raises(DataError, match=r"is empty \(0 rows\)"):
        load_source(_cfg(tmp_path, source="d.csv"))
    with pytest.raises(DataError, match=r"no data configured: set data\.source"):
        load_source(_cfg(tmp_path))


def test_unparseable_time_column(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("ts,x,y\n2026-01-01,1,0\nyesterday,2,1\n")
    with pytest.raises(DataError, match=r"time column 'ts' is neither numeric nor dates: 1 values do not parse "
                                        r"\(e\.g\. 'yesterday'\); fix the data, or set model\.time_column"):
        load_source(_cfg(tmp_path, source="d.csv"))


def test_query_reads_files_relative_to_base_dir(tmp_path: Path, frame: pd.DataFrame,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    frame.to_parquet(tmp_path / "d.parquet")
    monkeypatch.chdir(tmp_path.parent)
    df = load_source(_cfg(tmp_path, query="SELECT * FROM 'd.parquet' WHERE x > 1 ORDER BY ts"))
    assert df["x"].tolist() == [2.0, 3.0, 4.0]
    assert df["ts"].iloc[0] == pd.Timestamp("2026-01-01 01:00", tz="UTC")


def test_bad_sql_includes_duckdb_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"(?s)data\.query failed in DuckDB: Parser Error: syntax error.*\nfix the SQL in data\.query"):
        load_source(_cfg(tmp_path, query="SELEC 1"))
    with pytest.raises(DataError, match=r"data\.query failed in DuckDB: .*No files found.*missing\.parquet"):
        load_source(_cfg(tmp_path, query="SELECT * FROM 'missing.parquet'"))


def test_asof_join_is_point_in_time(tmp_path: Path) -> None:
    """Each label row gets the latest feature value known at its time, never a later one."""
    events = pd.DataFrame({
        "customer": [1, 1, 2, 2],
        "ts": pd.to_datetime(["2026-01-02", "2026-01-05", "2026-01-03", "2026-01-01"], utc=True),
        "y": [0, 1, 1, 0],
    })
    features = pd.DataFrame({
        "customer": [1, 1, 1, 2],
        "ts": pd.to_datetime(["2026-01-01", "2026-01-04", "2026-01-06", "2026-01-02"], utc=True),
        "score": [10.0, 40.0, 60.0, 20.0],
    })
    events.to_parquet(tmp_path / "events.parquet")
    features.to_parquet(tmp_path / "features.parquet")
    sql = """
        SELECT e.customer, e.ts, f.score, e.y
        FROM 'events.parquet' e
        ASOF LEFT JOIN 'features.parquet' f ON e.customer = f.customer AND e.ts >= f.ts
        ORDER BY e.customer, e.ts
    """
    df = run_query(sql, tmp_path)
    # customer 1 at 01-02 sees 10 (not 40 from 01-04); at 01-05 sees 40 (not 60 from 01-06);
    # customer 2 at 01-01 has no earlier feature row; at 01-03 sees 20
    assert df["score"].tolist()[0:2] == [10.0, 40.0]
    assert pd.isna(df["score"].iloc[2]) and df["score"].iloc[3] == 20.0


def test_query_types_are_model_ready(tmp_path: Path) -> None:
    df = run_query("SELECT 1.25::DECIMAL(10, 2) AS price, DATE '2026-01-02' AS day, 'x' AS s", tmp_path)
    assert df["price"].dtype == "float64" and df["price"].iloc[0] == 1.25
    assert str(df["day"].dtype).startswith("datetime64")
