"""Dataset snapshots: a content hash, the schema, the row count and the time range.

A model version's lineage names the snapshot hashes it was trained on, so the hash must
be the same for the same data on every machine and every run, and differ when any value,
column name, dtype or the row order differs (row order matters: time-based splits and
"the most recent N rows" depend on it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.data._columns import unknown_column
from modelpilot.data.timecol import parse_dates


@dataclass(frozen=True)
class DatasetSnapshot:
    """What identifies a dataset; the fields map one-to-one to ``Store.add_dataset``."""

    hash: str
    source: str
    rows: int
    schema: dict[str, str]
    time_min: datetime | None = None
    time_max: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601 strings)."""
        out = asdict(self)
        for key in ("time_min", "time_max"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """One uint64 per row, from values only (the index is not data)."""
    try:
        hashed = pd.util.hash_pandas_object(df, index=False)
    except TypeError:
        # unhashable cells (lists, dicts) in object columns: hash their text form
        text = df.copy()
        for col in text.select_dtypes(include="object").columns:
            text[col] = text[col].map(repr)
        hashed = pd.util.hash_pandas_object(text, index=False)
    return np.ascontiguousarray(hashed.to_numpy(dtype=np.uint64))


def dataset_hash(df: pd.DataFrame) -> str:
    """sha256 over the per-row value hashes plus the column names and dtypes.

    >>> a = pd.DataFrame({"x": [1, 2]})
    >>> dataset_hash(a) == dataset_hash(a.copy()), dataset_hash(a) == dataset_hash(a[::-1])
    (True, False)
    """
    digest = hashlib.sha256()
    schema = [[str(c), str(t)] for c, t in df.dtypes.items()]
    digest.update(json.dumps(schema, separators=(",", ":")).encode())
    digest.update(len(df).to_bytes(8, "little"))
    digest.update(row_hashes(df).tobytes())
    return digest.hexdigest()


def _as_utc(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    result: datetime = ts.to_pydatetime(warn=False)
    return result.astimezone(UTC)


def time_range(df: pd.DataFrame, time_column: str) -> tuple[datetime | None, datetime | None]:
    """The first and last time in ``time_column`` as timezone-aware UTC datetimes.

    Naive timestamps are taken to be UTC. Numeric time columns (a step counter) have no
    calendar range and give ``(None, None)``.

    Raises:
        DataError: the column is missing or holds values that are not dates.
    """
    if time_column not in df.columns:
        raise unknown_column(time_column, df.columns, "model.time_column")
    col = df[time_column]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return None, None
    if not pd.api.types.is_datetime64_any_dtype(col):
        col = parse_dates(col, time_column, role="time column",
                          fix="set model.time_column in pilot.yaml to a column of times")
    return _as_utc(col.min()), _as_utc(col.max())


def snapshot(df: pd.DataFrame, source: str, time_column: str | None = None) -> DatasetSnapshot:
    """Describe ``df`` for the store and for lineage.

    Args:
        df: the data as read (before splitting).
        source: where it came from (a path, ``"data.query"``, ``"prediction-log"``...).
        time_column: the column whose min and max become the time range, if any.

    Returns:
        The snapshot; ``hash`` is a 64-character sha256 hex digest.

    Raises:
        DataError: ``time_column`` is missing from ``df`` or does not hold dates.

    Example::

        >>> s = snapshot(pd.DataFrame({"x": [1.0, 2.0]}), "memory")
        >>> s.rows, s.schema
        (2, {'x': 'float64'})
    """
    time_min, time_max = time_range(df, time_column) if time_column else (None, None)
    return DatasetSnapshot(
        hash=dataset_hash(df),
        source=source,
        rows=len(df),
        schema={str(c): str(t) for c, t in df.dtypes.items()},
        time_min=time_min,
        time_max=time_max,
    )
