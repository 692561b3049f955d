"""Train/validation split.

``split.method: auto`` splits by time when ``model.time_column`` is set (the model is
judged on the period after the one it learned from, as it will be in production), else
stratified random for classification and plain random for regression.

A time split cuts the time *span*: the rows in the last ``validation_fraction`` of the
interval between the first and last timestamp are validation. When that leaves either
side nearly empty (timestamps bunched at one end) it falls back to the row quantile of
time, so both sides still hold rows and no timestamp straddles the cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from modelpilot.config import PilotConfig
from modelpilot.data.timecol import parse_dates
from modelpilot.errors import DataError

_MIN_SIDE = 2


@dataclass(frozen=True)
class Split:
    """Row positions (``iloc``) of each side and how they were chosen."""

    train: np.ndarray
    validation: np.ndarray
    method: str  # "time" | "stratified" | "random"
    cutoff: str | None = None  # first validation timestamp, for a time split

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "train_rows": len(self.train),
            "validation_rows": len(self.validation),
            "cutoff": self.cutoff,
        }


def _time_split(times: pd.Series, fraction: float) -> tuple[np.ndarray, np.ndarray, str]:
    """The latest ``fraction`` of the rows (not of the time span) is validation.

    Rows are ordered by time with a stable sort, so rows sharing a timestamp (a batch of
    requests logged together) keep their arrival order and the cut falls between rows.
    A span-based cut would put everything recent into validation when the data mixes old
    history with a burst of new rows. Rows without a time go to training.
    """
    if not (pd.api.types.is_datetime64_any_dtype(times) or pd.api.types.is_numeric_dtype(times)):
        # text times (data not read through load_source): the data layer's one reading of them
        times = parse_dates(times, str(times.name), role="time column",
                            fix="set model.time_column in pilot.yaml to a column of times")
    if pd.api.types.is_datetime64_any_dtype(times):
        # seconds since the first time; NaT becomes NaN (works for naive and tz-aware)
        values = (times - times.min()).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(times, errors="coerce").to_numpy(dtype=np.float64)
    timed = np.flatnonzero(~np.isnan(values))
    if len(timed) == 0:
        raise DataError("the time column holds no values: fix the data or unset model.time_column")
    if np.nanmin(values) == np.nanmax(values):
        return np.arange(len(values)), np.array([], dtype=np.int64), "None"
    order = timed[np.argsort(values[timed], kind="stable")]
    n_valid = min(max(int(np.ceil(fraction * len(values))), _MIN_SIDE), len(order) - _MIN_SIDE)
    valid = np.sort(order[len(order) - n_valid :])
    train = np.setdiff1d(np.arange(len(values)), valid)
    return train, valid, str(times.iloc[order[len(order) - n_valid]])


def split_frame(df: pd.DataFrame, target: str, task: str, cfg: PilotConfig) -> Split:
    """Split ``df`` into training and validation rows.

    Args:
        df: the dataset (any index; positions are returned).
        target: the target column (for stratification).
        task: ``"classification"`` or ``"regression"``.
        cfg: ``split`` and ``model.time_column`` / ``model.seed`` are read.

    Returns:
        A :class:`Split` of row positions.

    Raises:
        DataError: the split is by time but there is no time column, or a side is empty.
    """
    fraction = cfg.split.validation_fraction
    method = cfg.split.method
    time_column = cfg.model.time_column
    if method == "time" and not time_column:
        raise DataError("split.method is 'time' but model.time_column is not set: set it, or use split.method: random")
    if len(df) < 2 * _MIN_SIDE:
        raise DataError(f"only {len(df)} rows: at least {2 * _MIN_SIDE} are needed to split into training and validation")
    if time_column and method in ("auto", "time"):
        train, valid, cutoff = _time_split(df[time_column], fraction)
        if len(valid) == 0:
            raise DataError(
                f"every row of '{time_column}' has the same time, so there is no later period to "
                "validate on: use split.method: random"
            )
        return Split(train, valid, "time", cutoff)
    positions = np.arange(len(df))
    y = df[target].to_numpy()
    stratify = None
    if task == "classification":
        _, counts = np.unique(y.astype(str), return_counts=True)
        n_valid = int(np.ceil(fraction * len(df)))
        # stratifying needs two rows per class and room for every class on each side
        if counts.min() >= 2 and n_valid >= len(counts) and len(df) - n_valid >= len(counts):
            stratify = y.astype(str)
    train, valid = train_test_split(
        positions, test_size=fraction, random_state=cfg.model.seed, stratify=stratify
    )
    return Split(np.sort(train), np.sort(valid), "stratified" if stratify is not None else "random")
