"""Read training data: a Parquet/CSV path (or glob, or folder), or a DuckDB query.

``data.source`` is a path relative to the config file's folder (``cfg.base_dir``);
``data.query`` is SQL run in an in-memory DuckDB whose ``file_search_path`` is that
folder, so ``FROM 'events.parquet'`` in the SQL reads the file next to ``pilot.yaml``.
We set the search path instead of ``os.chdir`` because the working directory is
process-wide and the server and executors read data from several threads.

Point-in-time features come for free: DuckDB supports ``ASOF JOIN``, which joins each
row with the latest earlier row of another table, so a label never sees a feature
value from its future::

    SELECT e.*, f.score
    FROM 'events.parquet' e
    ASOF JOIN 'features.parquet' f ON e.customer = f.customer AND e.ts >= f.ts

Every failure is a :class:`~modelpilot.errors.DataError` that names the path or the SQL
problem and says how to fix it.
"""

from __future__ import annotations

import glob as _glob
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from modelpilot.config import PilotConfig
from modelpilot.data.timecol import parse_dates, read_time_column
from modelpilot.errors import DataError

_GLOB_CHARS = frozenset("*?[")


def _read_parquet(path: str) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_csv(path: str) -> pd.DataFrame:
    return pd.read_csv(path)


# extension -> (format name, reader); a registry rather than an if-chain so a format is one line
READERS: dict[str, tuple[str, Callable[[str], pd.DataFrame]]] = {
    ".parquet": ("Parquet", _read_parquet),
    ".pq": ("Parquet", _read_parquet),
    ".csv": ("CSV", _read_csv),
}


def _missing(path: str | Path) -> DataError:
    return DataError(
        f"no data at {path}: check data.source in pilot.yaml (relative paths are relative "
        "to the config file) or run 'modelpilot init' to write an example dataset"
    )


def _expand(path: str) -> list[str]:
    """The files a path, a glob or a folder stands for, sorted for a stable row order."""
    if "://" in path:
        return [path]  # an fsspec URL (s3://...) is read as one object by pandas
    if any(c in _GLOB_CHARS for c in path):
        files = sorted(f for f in _glob.glob(path, recursive=True) if Path(f).is_file())
        if not files:
            raise _missing(path)
        return files
    p = Path(path)
    if p.is_dir():
        for ext in READERS:
            files = sorted(str(f) for f in p.glob(f"*{ext}"))
            if files:
                return files
        raise DataError(
            f"no data files in the folder {p}: expected files ending in "
            f"{', '.join(READERS)}; check data.source in pilot.yaml"
        )
    if not p.is_file():
        raise _missing(p)
    return [path]


def _reader(path: str) -> tuple[str, Callable[[str], pd.DataFrame]]:
    suffix = Path(path.split("?", 1)[0]).suffix.lower()
    if suffix not in READERS:
        raise DataError(
            f"unsupported file type '{suffix or '(none)'}' for {path}: modelpilot reads "
            f"{', '.join(READERS)} files; convert the file or point data.source at one, "
            "or use data.query to read it with DuckDB"
        )
    return READERS[suffix]


def load_path(path: str | Path) -> pd.DataFrame:
    """Read a Parquet or CSV file, a glob of them (``data/*.parquet``) or a folder.

    Files of a glob are read in sorted name order and concatenated.

    Args:
        path: a file path, glob pattern, folder or fsspec URL (``s3://bucket/x.parquet``).

    Returns:
        The rows of all files, with a fresh ``RangeIndex``.

    Raises:
        DataError: nothing at the path, an unsupported extension, or an unreadable file.

    Example::

        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); f = os.path.join(d, "a.csv")
        >>> _ = open(f, "w").write("x,y\\n1,2\\n")
        >>> load_path(f).shape
        (1, 2)
    """
    files = _expand(str(path))
    frames = []
    for f in files:
        kind, read = _reader(f)
        try:
            frames.append(read(f))
        except FileNotFoundError:
            raise _missing(f) from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{f} is empty: write a header line and rows, or remove it") from None
        except Exception as exc:  # pyarrow, the CSV parser and codecs raise many types
            raise DataError(
                f"could not read {f} as {kind}: {type(exc).__name__}: {exc}; check the file is "
                f"a valid, complete {kind} file (not truncated, not another format renamed)"
            ) from None
    if len(frames) == 1:
        return frames[0]
    try:
        return pd.concat(frames, ignore_index=True)
    except Exception as exc:
        raise DataError(f"the files of {path} do not share one schema: {exc}") from None


def run_query(sql: str, base_dir: str | Path) -> pd.DataFrame:
    """Run SQL in a fresh in-memory DuckDB; relative file paths resolve against ``base_dir``.

    Args:
        sql: a DuckDB query; may read files (``FROM 'x.parquet'``, ``read_csv('*.csv')``)
            and use ``ASOF JOIN`` for point-in-time joins.
        base_dir: the folder relative file paths in the SQL resolve against.

    Returns:
        The result as a DataFrame (timestamps with time zone come back in UTC).

    Raises:
        DataError: the SQL does not parse, references a missing file or column, or fails.
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET file_search_path = '{str(base_dir).replace(chr(39), chr(39) * 2)}'")
        con.execute("SET TimeZone = 'UTC'")
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, CREATE ...)
            raise DataError("data.query returned no result: end it with a SELECT")
        return _to_pandas(relation.to_arrow_table())
    except duckdb.Error as exc:
        raise DataError(
            f"data.query failed in DuckDB: {str(exc).strip()}\nfix the SQL in data.query in pilot.yaml "
            f"(relative file paths resolve against {base_dir})"
        ) from None
    finally:
        con.close()


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow → pandas with ML-friendly types: decimals become floats, dates timestamps.

    (DuckDB's own ``.df()`` does the same but trips a pandas deprecation warning.)
    """
    fields = []
    for f in table.schema:
        if pa.types.is_decimal(f.type):
            f = f.with_type(pa.float64())
        elif pa.types.is_date(f.type):
            f = f.with_type(pa.timestamp("us"))
        fields.append(f)
    return table.cast(pa.schema(fields)).to_pandas()


def _parse_datetimes(df: pd.DataFrame, cfg: PilotConfig) -> pd.DataFrame:
    """Read the time column onto the loop's clock and parse ``datetime`` schema columns.

    CSV has no timestamp type, so ``ts`` comes back as strings; the snapshot's time range,
    time-based splits and the controller's history need real timestamps. A numeric time
    column is an ordinal clock unless ``data.time_unit`` names an epoch unit (see
    :mod:`modelpilot.data.timecol`).
    """
    time_col = cfg.model.time_column
    if time_col and time_col in df.columns:
        df[time_col] = read_time_column(df[time_col], time_col, cfg.data.time_unit, allow_missing=True,
                                        fix="data.time_unit")[0]
    for col, kind in cfg.data.schema_.items():
        if kind != "datetime" or col == time_col or col not in df.columns:
            continue
        if pd.api.types.is_numeric_dtype(df[col]):
            continue  # numbers declared datetime: the types check reports them
        df[col] = parse_dates(df[col], col, fix=f"data.schema (it declares '{col}' datetime)")
    return df


def load_source(cfg: PilotConfig, path: str | Path | None = None) -> pd.DataFrame:
    """The training data the config points at: ``data.source`` or ``data.query``.

    Args:
        cfg: the loaded config; relative paths resolve against ``cfg.base_dir``.
        path: read this file (or glob, folder, URL) instead, parsed as the config's data
            (``modelpilot check data FILE``, a holdout file).

    Returns:
        The rows, with the time column (and ``datetime`` schema columns) parsed.

    Raises:
        DataError: no source configured, a missing/unsupported/unreadable file, bad SQL,
            or a result without rows.
    """
    if path is not None:
        where = str(path)
        df = load_path(path)
    elif cfg.data.query:
        df = run_query(cfg.data.query, cfg.base_dir)
        where = "data.query"
    elif cfg.data.source:
        src = cfg.data.source
        where = src if "://" in src else str(cfg.resolve_path(src))
        df = load_path(where)
    else:
        raise DataError(
            "no data configured: set data.source (a Parquet/CSV path) or data.query (DuckDB "
            "SQL) in pilot.yaml, or run 'modelpilot init' to write an example dataset"
        )
    if len(df) == 0:
        raise DataError(
            f"the dataset from {where} is empty (0 rows): check the file or the query's "
            "WHERE clause"
        )
    from modelpilot.data.online import join_online_features  # online_features, point-in-time

    return join_online_features(_parse_datetimes(df, cfg), cfg)
