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
        self._versions: list[dict[int, int]] = []  # rows per model version, per chunk
        self._side: list[pd.DataFrame] = []  # rows of other roles (see append)
        self._side_span: list[tuple[Any, Any]] = []
        self.rows_scanned = 0

    def append(self, rows: pd.DataFrame) -> None:
        """Add rows, no older than any row before them (the frame is copied, not kept).

        Rows whose ``role`` is not ``primary`` (the retired champion's shadow sample) are
        kept apart, as the prediction log's reader keeps them out of the window: they share
        request ids with the champion's rows and are read only by :meth:`paired`.
        """
        if "role" in rows and len(rows) and (rows["role"] != "primary").any():
            side = rows[rows["role"] != "primary"].reset_index(drop=True).copy()
            self._side.append(side)
            self._side_span.append((side["ts"].min(), side["ts"].max()))
            rows = rows[rows["role"] == "primary"]
        chunk = rows.reset_index(drop=True).copy()
        if "label" not in chunk:
            chunk["label"] = pd.Series([None] * len(chunk), dtype=object)
        k = len(self._chunks)
        positions = zip(itertools.repeat(k), range(len(chunk)), strict=False)
        self._where.update(zip(chunk["request_id"].to_numpy().tolist(), positions, strict=False))
        self._chunks.append(chunk)
        self._versions.append({int(v): int(c) for v, c in chunk["model_version"].value_counts().items()}
                              if len(chunk) else {})
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
        parts = []
        for k in range(len(self._side) - 1, -1, -1):  # newest first; stop before `since`
            side, (first, last) = self._side[k], self._side_span[k]
            if since is not None and last < since:
                break
            keep = (side["role"] == "retired").to_numpy() & (side["model_version"] == retired).to_numpy()
            if since is not None and first < since:
                keep = keep & (side["ts"] >= since).to_numpy()
            self.rows_scanned += len(side)
            if keep.any():
                parts.append(side[keep])
        if not parts:
            return pd.DataFrame(columns=cols)
        side = pd.concat(parts[::-1], ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
        # the champion's answer to the same request, read chunk by chunk through the id index
        at = np.asarray([self._where.get(rid, (-1, -1)) for rid in side["request_id"].tolist()],
                        dtype=np.int64).reshape(-1, 2)
        n = len(side)
        version = np.full(n, -1, dtype=np.int64)
        label = np.full(n, None, dtype=object)
        new = np.full(n, None, dtype=object)
        for k in np.unique(at[:, 0]):
            if k < 0:
                continue  # the champion's row is not in the window
            sel = np.flatnonzero(at[:, 0] == k)
            chunk, rows = self._chunks[k], at[sel, 1]
            version[sel] = chunk["model_version"].to_numpy()[rows]
            label[sel] = chunk["label"].to_numpy(dtype=object)[rows]
            new[sel] = chunk["prediction"].to_numpy(dtype=object)[rows]
        ok = (version == champion) & pd.notna(label)
        return pd.DataFrame({"request_id": side["request_id"].to_numpy()[ok], "label": label[ok], "new": new[ok],
                             "old": side["prediction"].to_numpy(dtype=object)[ok]}, columns=cols)

    def served(self, version: int, *, since: datetime | None = None, until: datetime | None = None) -> int:
        total = 0
        for k in range(len(self._chunks) - 1, -1, -1):  # whole chunks are counted from their tallies
            chunk, (first, last) = self._chunks[k], self._span[k]
            if not len(chunk) or (until is not None and first >= until):
                continue
            if since is not None and last < since:
                break
            if (since is None or first >= since) and (until is None or last < until):
                total += self._versions[k].get(version, 0)
                continue
            ts = chunk["ts"]
            keep = (chunk["model_version"] == version).to_numpy()
            if since is not None:
                keep = keep & (ts >= since).to_numpy()
            if until is not None:
                keep = keep & (ts < until).to_numpy()
            self.rows_scanned += len(chunk)
            total += int(keep.sum())
        return total
