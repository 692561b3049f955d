"""Reading the prediction log: DuckDB over the Parquet segments in the artifact store.

Segments of one model live under ``predlog/<model>/<kind>/date=YYYY-MM-DD/``; a time
filter first prunes whole days by key, then DuckDB scans only the columns a query needs
(``read_parquet([...], union_by_name=true)`` so segments written by model versions with
other features still combine). Local stores are read by path; remote stores (S3) through
their fsspec filesystem registered in the DuckDB connection.

Example::

    reader = PredictionLogReader(artifacts, "churn")
    window = reader.joined(last_n=2000)   # predictions + latest label per request
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import fsspec
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore

PREFIX = "predlog"
PREDICTION_COLUMNS = [
    "request_id", "ts", "model_version", "role", "prediction", "score", "probabilities",
    "latency_ms",
]
FEEDBACK_COLUMNS = ["request_id", "ts", "label", "reward"]


def segment_prefix(model: str, kind: str) -> str:
    """The key prefix of one model's segments of ``kind`` ("predictions" | "feedback")."""
    return f"{PREFIX}/{model}/{kind}/"


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class PredictionLogReader:
    """Queries one model's prediction log. Safe to share between threads (a lock per query).

    Args:
        artifacts: the artifact store the servers log into.
        model: the model name.
    """

    def __init__(self, artifacts: ArtifactStore, model: str) -> None:
        self.artifacts = artifacts
        self.model = model
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        # known_ids' index: the segments read so far and their ids' hashes, sorted
        self._indexed: set[str] = set()
        self._id_hashes = np.empty(0, dtype=np.uint64)
        self.segments_indexed = 0  # segments known_ids has read (each once)

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            probe = self.artifacts.fs_url("probe")
            if "://" in probe and not probe.startswith("file://"):
                protocol = probe.split("://", 1)[0]
                con.register_filesystem(
                    fsspec.filesystem(protocol, **self.artifacts.storage_options)
                )
            self._con = con
        return self._con

    def files(self, kind: str = "predictions", since: datetime | None = None,
              until: datetime | None = None) -> list[str]:
        """URLs of the segments of ``kind``, pruned to the days ``[since, until]`` touch."""
        keys = [k for k in self.artifacts.list(segment_prefix(self.model, kind)) if k.endswith(".parquet")]
        lo = _utc(since).date().isoformat() if since else None
        hi = _utc(until).date().isoformat() if until else None

        def day(key: str) -> str:
            part = key.rsplit("/", 2)[-2]
            return part[5:] if part.startswith("date=") else ""

        keys = [k for k in keys if (lo is None or day(k) >= lo) and (hi is None or day(k) <= hi)]
        return [self.artifacts.fs_url(k) for k in keys]

    def _scan(self, files: list[str]) -> str:
        return f"read_parquet([{', '.join(map(_quote, files))}], union_by_name=true, hive_partitioning=false)"

    def _query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self._lock:
            # via Arrow: DuckDB's own pandas conversion trips pandas 3.1 deprecation warnings
            table = self._connection().sql(sql, params=params or None).to_arrow_table()
        return table.to_pandas()

    @staticmethod
    def _where(since: datetime | None, until: datetime | None, params: list[Any]) -> list[str]:
        cond = []
        if since is not None:
            cond.append("ts >= ?")
            params.append(_utc(since))
        if until is not None:
            cond.append("ts < ?")
            params.append(_utc(until))
        return cond

    # ------------------------------------------------------------------ queries

    def predictions(self, since: datetime | None = None, until: datetime | None = None,
                    last_n: int | None = None, version: int | None = None,
                    role: str | None = "primary") -> pd.DataFrame:
        """Logged predictions, oldest first.

        Args:
            since: only rows with ``ts >= since`` (timezone-aware; naive means UTC).
            until: only rows with ``ts < until``.
            last_n: only the ``last_n`` newest rows (after the other filters).
            version: only rows of this model version.
            role: "primary" (default), "shadow", or None for both.

        Returns:
            One row per prediction, the columns described in :mod:`modelpilot.serving.predlog`
            (``ts`` tz-aware UTC); an empty frame with the base columns when nothing matches.
        """
        files = self.files("predictions", since, until)
        if not files:
            return pd.DataFrame(columns=PREDICTION_COLUMNS)
        params: list[Any] = []
        cond = self._where(since, until, params)
        if version is not None:
            cond.append("model_version = ?")
            params.append(int(version))
        if role is not None:
            cond.append("role = ?")
            params.append(role)
        return self._select(self._scan(files), cond, params, last_n)

    def feedback(self, since: datetime | None = None, until: datetime | None = None,
                 last_n: int | None = None) -> pd.DataFrame:
        """Logged feedback rows (every one, including repeated labels), oldest first."""
        files = self.files("feedback", since, until)
        if not files:
            return pd.DataFrame(columns=FEEDBACK_COLUMNS)
        params: list[Any] = []
        return self._select(self._scan(files), self._where(since, until, params), params, last_n)

    def _select(self, source: str, cond: list[str], params: list[Any],
                last_n: int | None) -> pd.DataFrame:
        where = f" WHERE {' AND '.join(cond)}" if cond else ""
        sql = f"SELECT * FROM {source}{where}"
        if last_n is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY ts DESC LIMIT {int(last_n)})"
        return self._query(sql + " ORDER BY ts, request_id", params)

    def joined(self, since: datetime | None = None, last_n: int | None = None,
               until: datetime | None = None, role: str | None = "primary") -> pd.DataFrame:
        """Predictions LEFT JOIN the latest feedback per request id.

        Feedback is searched from a day before ``since`` on (labels arrive after the
        prediction, never before). Adds ``label``, ``reward`` and ``feedback_ts`` (null for
        predictions without feedback).
        """
        pred_files = self.files("predictions", since, until)
        if not pred_files:
            return pd.DataFrame(columns=[*PREDICTION_COLUMNS, "label", "reward", "feedback_ts"])
        params: list[Any] = []
        cond = self._where(since, until, params)
        if role is not None:
            cond.append("role = ?")
            params.append(role)
        where = f" WHERE {' AND '.join(cond)}" if cond else ""
        preds = f"SELECT * FROM {self._scan(pred_files)}{where}"
        if last_n is not None:
            preds += f" ORDER BY ts DESC LIMIT {int(last_n)}"
        fb_files = self.files("feedback", (since - timedelta(days=1)) if since else None)
        if fb_files:
            latest = (
                f"SELECT request_id, label, reward, ts AS feedback_ts FROM {self._scan(fb_files)} "
                "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts DESC) = 1"
            )
        else:
            latest = (
                "SELECT NULL::VARCHAR AS request_id, NULL::VARCHAR AS label, "
                "NULL::DOUBLE AS reward, NULL::TIMESTAMPTZ AS feedback_ts WHERE false"
            )
        sql = (
            f"WITH p AS ({preds}), f AS ({latest}) "
            "SELECT p.*, f.label, f.reward, f.feedback_ts FROM p LEFT JOIN f USING (request_id) "
            "ORDER BY p.ts, p.request_id"
        )
        return self._query(sql, params)

    def count(self, kind: str = "predictions") -> int:
        """Rows logged of ``kind`` (from Parquet footers; no data is scanned)."""
        files = self.files(kind)
        if not files:
            return 0
        return int(self._query(f"SELECT count(*) AS n FROM {self._scan(files)}")["n"].iloc[0])

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of ``ids`` that were ever logged as predictions of this model.

        Answered from an index of the request ids of every prediction segment (their
        64-bit DuckDB hashes, sorted), built incrementally: each call reads only the
        segments written since the previous one, so the work per feedback does not grow
        with the log (a segment is immutable once written). The index costs 8 bytes per
        logged prediction; a hash collision (odds about n^2 / 2^65 for n logged ids) can
        only accept a label for an id that was never predicted, which the monitoring join
        then ignores.
        """
        wanted = list(dict.fromkeys(ids))
        files = self.files("predictions")
        if not wanted or not files:
            return set()
        with self._lock:
            con = self._connection()
            new = [f for f in files if f not in self._indexed]
            if new:
                table = con.sql(f"SELECT hash(request_id) AS h FROM {self._scan(new)}").to_arrow_table()
                hashes = table.column("h").to_numpy().astype(np.uint64, copy=False)
                self._id_hashes = np.union1d(self._id_hashes, hashes)
                self._indexed.update(new)
                self.segments_indexed += len(new)
            asked = con.sql("SELECT x, hash(x) AS h FROM unnest(?::VARCHAR[]) AS t(x)",
                            params=[wanted]).to_arrow_table()
        found = np.isin(asked.column("h").to_numpy().astype(np.uint64, copy=False), self._id_hashes,
                        assume_unique=False)
        return {x for x, hit in zip(asked.column("x").to_pylist(), found.tolist(), strict=True) if hit}

    def paired(self, champion: int, retired: int, since: datetime | None = None) -> pd.DataFrame:
        """Rows both the champion (role ``primary``) and the retired champion (role ``retired``)
        scored, with the latest label: ``request_id``, ``label``, ``new``, ``old`` (predictions)."""
        pred_files = self.files("predictions", since)
        fb_files = self.files("feedback", (since - timedelta(days=1)) if since else None)
        empty = pd.DataFrame(columns=["request_id", "label", "new", "old"])
        if not pred_files or not fb_files:
            return empty
        params: list[Any] = []
        cond = self._where(since, None, params)
        where = (" AND " + " AND ".join(cond)) if cond else ""
        scan = self._scan(pred_files)
        sql = (
            f"WITH r AS (SELECT request_id, any_value(prediction) AS old FROM {scan} "
            f"WHERE role = 'retired' AND model_version = {int(retired)}{where} GROUP BY request_id), "
            f"p AS (SELECT request_id, any_value(prediction) AS new FROM {scan} "
            f"WHERE role = 'primary' AND model_version = {int(champion)}{where} "
            "AND request_id IN (SELECT request_id FROM r) GROUP BY request_id), "
            f"f AS (SELECT request_id, label FROM {self._scan(fb_files)} "
            "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts DESC) = 1) "
            "SELECT p.request_id, f.label, p.new, r.old FROM p JOIN r USING (request_id) "
            "JOIN f USING (request_id) WHERE f.label IS NOT NULL ORDER BY p.request_id"
        )
        return self._query(sql, params + params)

    def count_served(self, version: int, since: datetime | None = None, until: datetime | None = None) -> int:
        """Predictions ``version`` answered (role ``primary``) in ``[since, until)``."""
        files = self.files("predictions", since, until)
        if not files:
            return 0
        params: list[Any] = []
        cond = [*self._where(since, until, params), "role = 'primary'", f"model_version = {int(version)}"]
        sql = f"SELECT count(*) AS n FROM {self._scan(files)} WHERE {' AND '.join(cond)}"
        return int(self._query(sql, params)["n"].iloc[0])

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
