"""Where the controller reads live traffic from.

In production the window is the prediction log (Parquet segments read with DuckDB); in a
backtest it is an in-memory frame on a simulated clock. Both give the controller the same
plain data: one row per prediction with its features (``f_<name>`` columns), the
prediction, the score, the model version, the time, and the label once it has arrived.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import pandas as pd


class WindowSource(Protocol):
    """Recent predictions joined with their labels (``label`` is null until feedback)."""

    def window(
        self, *, last_n: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Rows sorted by time, oldest first; columns as the prediction log's plus ``label``."""
        ...

    def labelled(self, *, last_n: int | None = None, since: datetime | None = None) -> pd.DataFrame:
        """Only the rows whose label has arrived, oldest first."""
        ...


class FrameWindow:
    """A window over an in-memory frame (backtests, tests): rows appended as they happen."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []
        self._frame: pd.DataFrame | None = None

    def append(self, rows: pd.DataFrame) -> None:
        self._parts.append(rows)
        self._frame = None

    def set_labels(self, request_ids: pd.Series, labels: pd.Series) -> None:
        frame = self.frame
        mapping = pd.Series(labels.to_numpy(), index=request_ids.to_numpy())
        known = frame["request_id"].isin(mapping.index)
        frame.loc[known, "label"] = frame.loc[known, "request_id"].map(mapping).astype(frame["label"].dtype)

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = pd.concat(self._parts, ignore_index=True) if self._parts else pd.DataFrame()
            self._parts = [self._frame] if self._parts else []
        return self._frame

    def window(
        self, *, last_n: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        frame = self.frame
        if frame.empty:
            return frame
        if since is not None:
            frame = frame[frame["ts"] >= since]
        if until is not None:
            frame = frame[frame["ts"] < until]
        return frame.tail(last_n) if last_n else frame

    def labelled(self, *, last_n: int | None = None, since: datetime | None = None) -> pd.DataFrame:
        frame = self.window(since=since)
        if frame.empty:
            return frame
        frame = frame[frame["label"].notna()]
        return frame.tail(last_n) if last_n else frame
