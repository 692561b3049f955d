"""Where the controller reads live traffic from.

In production the window is the prediction log (Parquet segments read with DuckDB); in a
backtest it is an in-memory frame on a simulated clock. Both give the controller the same
plain data: one row per prediction with its features (``f_<name>`` columns), the
prediction, the score, the model version, the time, and the label once it has arrived.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any, Protocol

import numpy as np
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

    def paired(self, *, champion: int, retired: int, since: datetime | None = None) -> pd.DataFrame:
        """Labelled requests both ``champion`` (role ``primary``) and ``retired`` (role
        ``retired``, the retired champion's shadow) scored: ``request_id, label, new, old``."""
        ...

    def served(self, version: int, *, since: datetime | None = None, until: datetime | None = None) -> int:
        """How many predictions ``version`` answered (role ``primary``)."""
        ...


class FrameWindow:
    """A window over in-memory rows (backtests, tests), appended as they happen.

    Rows are kept as the chunks they were appended in (one per replayed batch), in time
    order, never copied into one growing frame. A query walks back from the newest chunk
    and stops as soon as it holds ``last_n`` matching rows or reaches rows older than
    ``since``; a chunk entirely inside the query (known from its time span and its count of
    labelled rows) is taken whole without a scan. Labels are set through an index from
    request id to (chunk, row). So the work of a tick is the size of what it reads, whatever
    the length of the history behind it: ``rows_scanned`` counts the rows that queries
    filtered or returned and that label updates touched.
    """

    def __init__(self) -> None:
        self._chunks: list[pd.DataFrame] = []
        self._n_labelled: list[int] = []  # labelled rows per chunk
        self._span: list[tuple[Any, Any]] = []  # (first, last) time per chunk
        self._where: dict[Any, tuple[int, int]] = {}  # request id -> (chunk, row)
        self._side: list[pd.DataFrame] = []  # rows of other roles (see append)
        self.rows_scanned = 0

    def append(self, rows: pd.DataFrame) -> None:
        """Add rows, no older than any row before them (the frame is copied, not kept).

        Rows whose ``role`` is not ``primary`` (the retired champion's shadow sample) are
        kept apart, as the prediction log's reader keeps them out of the window: they share
        request ids with the champion's rows and are read only by :meth:`paired`.
        """
        if "role" in rows and len(rows) and (rows["role"] != "primary").any():
            self._side.append(rows[rows["role"] != "primary"].reset_index(drop=True).copy())
            rows = rows[rows["role"] == "primary"]
        chunk = rows.reset_index(drop=True).copy()
        if "label" not in chunk:
            chunk["label"] = pd.Series([None] * len(chunk), dtype=object)
        k = len(self._chunks)
        positions = zip(itertools.repeat(k), range(len(chunk)), strict=False)
        self._where.update(zip(chunk["request_id"].to_numpy().tolist(), positions, strict=False))
        self._chunks.append(chunk)
        self._n_labelled.append(int(chunk["label"].notna().sum()))
        self._span.append((chunk["ts"].min(), chunk["ts"].max()) if len(chunk) else (None, None))

    def set_labels(self, request_ids: pd.Series, labels: pd.Series) -> None:
        """Set the label of each known request id (unknown ids are ignored)."""
        by_chunk: dict[int, tuple[list[int], list[Any]]] = {}
        for rid, label in zip(request_ids.to_numpy().tolist(), labels.to_numpy().tolist(), strict=True):
            where = self._where.get(rid)
            if where is not None:
                rows, values = by_chunk.setdefault(where[0], ([], []))
                rows.append(where[1])
                values.append(label)
        self.rows_scanned += len(request_ids)
        for k, (rows, values) in by_chunk.items():
            chunk = self._chunks[k]
            col = chunk.columns.get_loc("label")
            chunk.iloc[rows, col] = pd.Series(values, dtype=object).astype(chunk["label"].dtype).to_numpy()
            self._n_labelled[k] = int(chunk["label"].notna().sum())
            self.rows_scanned += len(chunk)

    @property
    def frame(self) -> pd.DataFrame:
        """Every row so far as one frame (a copy, for inspection; the loop never needs it)."""
        return pd.concat(self._chunks, ignore_index=True) if self._chunks else pd.DataFrame()

    def _tail(
        self, last_n: int | None, since: datetime | None, until: datetime | None, labelled: bool
    ) -> pd.DataFrame:
        picked: list[pd.DataFrame] = []
        found = 0
        for k in range(len(self._chunks) - 1, -1, -1):
            chunk, (first, last) = self._chunks[k], self._span[k]
            n_labelled = self._n_labelled[k]
            if not len(chunk) or (labelled and not n_labelled) or (until is not None and first >= until):
                continue
            if since is not None and last < since:
                break  # this chunk and every older one lie before `since`
            keep: np.ndarray | None = None  # None: the whole chunk, decided from its span and count
            if since is not None and first < since:
                keep = (chunk["ts"] >= since).to_numpy()
            if until is not None and last >= until:
                keep = (chunk["ts"] < until).to_numpy() & (True if keep is None else keep)
            if labelled and n_labelled < len(chunk):
                keep = chunk["label"].notna().to_numpy() & (True if keep is None else keep)
            if keep is not None:
                self.rows_scanned += len(chunk)
            part = chunk if keep is None else chunk[keep]
            if len(part):
                picked.append(part)
                found += len(part)
            if (last_n and found >= last_n) or (since is not None and first < since):
                break  # enough rows, or older chunks only hold rows before `since`
        if not picked:
            return self._chunks[0].iloc[:0] if self._chunks else pd.DataFrame()
        rows = pd.concat(picked[::-1], ignore_index=True) if len(picked) > 1 else picked[0].reset_index(drop=True)
        rows = rows.tail(last_n).reset_index(drop=True) if last_n else rows
        self.rows_scanned += len(rows)
        return rows

    def window(
        self, *, last_n: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        return self._tail(last_n, since, until, labelled=False)

    def labelled(self, *, last_n: int | None = None, since: datetime | None = None) -> pd.DataFrame:
        return self._tail(last_n, since, None, labelled=True)

    def paired(self, *, champion: int, retired: int, since: datetime | None = None) -> pd.DataFrame:
        cols = ["request_id", "label", "new", "old"]
        if not self._side:
            return pd.DataFrame(columns=cols)
        side = pd.concat(self._side, ignore_index=True) if len(self._side) > 1 else self._side[0]
        side = side[(side["role"] == "retired").to_numpy() & (side["model_version"] == retired).to_numpy()]
        if since is not None:
            side = side[side["ts"] >= since]
        ids, labels, new, old = [], [], [], []
        for rid, pred in zip(side["request_id"].tolist(), side["prediction"].tolist(), strict=True):
            where = self._where.get(rid)  # the champion's answer to the same request
            if where is None:
                continue
            row = self._chunks[where[0]].iloc[where[1]]
            if row["model_version"] != champion or row["label"] is None or pd.isna(row["label"]):
                continue
            ids.append(rid)
            labels.append(row["label"])
            new.append(row["prediction"])
            old.append(pred)
        self.rows_scanned += len(side)
        return pd.DataFrame({"request_id": ids, "label": labels, "new": new, "old": old}, columns=cols)

    def served(self, version: int, *, since: datetime | None = None, until: datetime | None = None) -> int:
        frame = self.window(since=since, until=until)
        return 0 if frame.empty else int((frame["model_version"].to_numpy() == version).sum())
