"""Online features: one definition for the training-time join and the serving-time lookup.

``online_features`` in ``pilot.yaml`` names a table of feature values over time (an
``entity`` key, a ``timestamp`` and the ``features``). The rule, on both sides, is *the last
row of the entity whose timestamp is at or before the moment*:

* at training (:meth:`FeatureTable.join`), the moment is each row's event time, and the
  rule is DuckDB's ``ASOF LEFT JOIN ... ON key = key AND event_time >= timestamp`` — a label
  never sees a feature value from its future;
* with ``max_age``, a last row older than that at the moment counts as missing, on both sides;
* at serving (:meth:`FeatureTable.lookup`), the moment is now (or ``as_of``): a file
  source is held in memory, sorted by key and time, and searched with a binary search; a
  database source (SQLite or PostgreSQL through SQLAlchemy) answers one query per request
  with ``row_number() OVER (PARTITION BY key ORDER BY timestamp DESC)``.

A training row and a request for the same entity at the same time therefore get the same
values, which ``tests/data/test_online_features.py`` checks row by row on both backends.
Times are compared in UTC; a naive time is taken to be UTC.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import sqlalchemy as sa

from modelpilot.config import OnlineFeaturesConfig, PilotConfig
from modelpilot.errors import ConfigError, DataError, RequestError

Key = tuple[Any, ...]


def _utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (what DuckDB and the binary search compare)."""
    out = pd.to_datetime(values, utc=True)
    return out.dt.tz_localize(None).astype("datetime64[us]")


def _is_database(source: str) -> bool:
    return "://" in source and not source.startswith(("s3://", "gs://", "file://"))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class FeatureTable:
    """The ``online_features`` table of a config; thread-safe.

    Args:
        spec: the ``online_features`` section.
        base_dir: the folder a relative file path resolves against.
    """

    def __init__(self, spec: OnlineFeaturesConfig, base_dir: Any = ".") -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.database = _is_database(spec.source)
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self._snapshot: tuple[float, dict[Key, tuple[list[Any], list[tuple[Any, ...]]]]] | None = None

    @classmethod
    def of(cls, cfg: PilotConfig) -> FeatureTable | None:
        """The table of ``cfg`` (None when ``online_features`` is not configured)."""
        spec = cfg.online_features
        return None if spec is None else cls(spec, cfg.base_dir)

    @property
    def columns(self) -> list[str]:
        return [*self.spec.entity, self.spec.timestamp, *self.spec.features]

    # ------------------------------------------------------------------ reading the table

    def engine(self) -> sa.Engine:
        if self._engine is None:
            url = self.spec.source
            if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
                from pathlib import Path

                url = "sqlite:///" + str(Path(self.base_dir) / url.removeprefix("sqlite:///"))
            try:
                self._engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            except Exception as exc:
                raise ConfigError(f"online_features.source {self.spec.source!r} is not a usable database URL: "
                                  f"{exc}") from None
        return self._engine

    def _sa_table(self) -> sa.TableClause:
        return sa.table(str(self.spec.table), *[
            sa.column(c, sa.DateTime()) if c == self.spec.timestamp else sa.column(c) for c in self.columns])

    def frame(self) -> pd.DataFrame:
        """The whole table (entity, timestamp, features), timestamps as naive UTC.

        Raises:
            DataError: the source cannot be read or lacks a configured column.
        """
        try:
            if self.database:
                with self.engine().connect() as conn:
                    df = pd.read_sql(sa.select(self._sa_table()), conn)
            else:
                from modelpilot.data.sources import load_path

                src = self.spec.source
                df = load_path(src if "://" in src else str(_resolve(self.base_dir, src)))
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"cannot read online_features.source {self.spec.source!r}: {type(exc).__name__}: "
                            f"{exc}") from None
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise DataError(f"online_features: column(s) {missing} are not in {self.spec.source}; it has "
                            f"{list(df.columns)}: fix online_features.entity/timestamp/features")
        df = df[self.columns].copy()
        df[self.spec.timestamp] = _utc_naive(df[self.spec.timestamp])
        return df

    # ------------------------------------------------------------------ training: the join

    def join(self, events: pd.DataFrame, event_time: str) -> pd.DataFrame:
        """``events`` with the feature columns added, point-in-time (ASOF LEFT JOIN).

        Rows keep their order; a row with no earlier feature row gets nulls.

        Raises:
            DataError: ``events`` lacks the entity or event-time column, or already has a
                feature column.
        """
        spec = self.spec
        missing = [c for c in [*spec.entity, event_time] if c not in events.columns]
        if missing:
            raise DataError(f"online_features: the training data has no column(s) {missing}: it needs the entity "
                            f"key(s) {spec.entity} and the event time {event_time!r} (online_features.event_time "
                            "or model.time_column)")
        clash = [c for c in spec.features if c in events.columns]
        if clash:
            raise DataError(f"online_features: the training data already has {clash}; drop them from the data "
                            "or from online_features.features")
        feats = self.frame()
        left = events.copy()
        left["__mp_row"] = np.arange(len(left))
        left["__mp_time"] = _utc_naive(left[event_time])
        on = " AND ".join(f"e.{_quote(k)} = f.{_quote(k)}" for k in spec.entity)
        picked = ", ".join(f"f.{_quote(c)}" for c in spec.features) + f", f.{_quote(spec.timestamp)} AS __mp_feature_time"
        sql = (f"SELECT e.*, {picked} FROM events e ASOF LEFT JOIN feats f "
               f"ON {on} AND e.__mp_time >= f.{_quote(spec.timestamp)} ORDER BY e.__mp_row")
        con = duckdb.connect(":memory:")
        try:
            con.register("events", left)
            con.register("feats", feats)
            from modelpilot.data.sources import _to_pandas

            out = _to_pandas(con.sql(sql).to_arrow_table())
        except duckdb.Error as exc:
            raise DataError(f"online_features: the point-in-time join failed: {exc}") from None
        finally:
            con.close()
        if spec.max_age is not None:  # too old at the row's time: missing, as at serving
            stale = (left["__mp_time"].to_numpy() - out["__mp_feature_time"].to_numpy()) > np.timedelta64(
                int(spec.max_age * 1e6), "us")
            out.loc[stale, spec.features] = None
        out = out.drop(columns=["__mp_row", "__mp_time", "__mp_feature_time"])
        out[event_time] = events[event_time].to_numpy()  # the caller's dtype, untouched
        return out

    def fill(self, frame: pd.DataFrame, event_time: str | None) -> pd.DataFrame:
        """A batch to score with its features added: point-in-time at each row's
        ``event_time`` when the batch has that column, else the latest rows (as a request).

        Raises:
            DataError: the batch lacks the entity key column(s).
        """
        if event_time and event_time in frame.columns:
            return self.join(frame, event_time)
        missing = [k for k in self.spec.entity if k not in frame.columns]
        if missing:
            raise DataError(f"online_features: the batch has no column(s) {missing}: it needs the entity key(s) "
                            f"{self.spec.entity} or the feature columns {self.spec.features}")
        found = self.lookup(list(zip(*(frame[k].tolist() for k in self.spec.entity), strict=True)))
        out = frame.copy()
        for f in self.spec.features:
            out[f] = [None if row is None else row[f] for row in found]
        return out

    # ------------------------------------------------------------------ serving: the lookup

    def _memory(self) -> dict[Key, tuple[list[Any], list[tuple[Any, ...]]]]:
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._snapshot[0] > self.spec.refresh_interval:
                df = self.frame().sort_values([*self.spec.entity, self.spec.timestamp], kind="stable")
                index: dict[Key, tuple[list[Any], list[tuple[Any, ...]]]] = {}
                keys = list(zip(*(df[k].tolist() for k in self.spec.entity), strict=True))
                times = df[self.spec.timestamp].tolist()
                rows = list(zip(*(df[f].tolist() for f in self.spec.features), strict=True))
                for key, at, row in zip(keys, times, rows, strict=True):
                    entry = index.setdefault(key, ([], []))
                    entry[0].append(at)
                    entry[1].append(row)
                self._snapshot = (time.monotonic(), index)
            return self._snapshot[1]

    def lookup(self, keys: Sequence[Key], as_of: datetime | None = None) -> list[dict[str, Any] | None]:
        """The features of each key: its last row at or before ``as_of`` (default now).

        Returns:
            One ``{feature: value}`` per key, or None for a key with no row by then.
        """
        when = pd.Timestamp(as_of or datetime.now(UTC))
        when = (when.tz_convert("UTC") if when.tzinfo else when.tz_localize("UTC")).tz_localize(None)
        if self.database:
            return self._lookup_sql(keys, when)
        oldest = None if self.spec.max_age is None else when - pd.Timedelta(seconds=self.spec.max_age)
        index = self._memory()
        out: list[dict[str, Any] | None] = []
        for key in keys:
            entry = index.get(tuple(key))
            at = bisect.bisect_right(entry[0], when) if entry else 0
            if not entry or at == 0 or (oldest is not None and entry[0][at - 1] < oldest):
                out.append(None)
            else:
                out.append(dict(zip(self.spec.features, entry[1][at - 1], strict=True)))
        return out

    def _lookup_sql(self, keys: Sequence[Key], when: pd.Timestamp) -> list[dict[str, Any] | None]:
        spec = self.spec
        if not keys:
            return []
        t = self._sa_table()
        key_cols = [t.c[k] for k in spec.entity]
        wanted = sorted({tuple(k) for k in keys}, key=str)
        match = key_cols[0].in_([k[0] for k in wanted]) if len(key_cols) == 1 else sa.tuple_(*key_cols).in_(wanted)
        rank = sa.func.row_number().over(partition_by=key_cols, order_by=t.c[spec.timestamp].desc()).label("mp_rank")
        inner = (sa.select(*key_cols, *[t.c[f] for f in spec.features], t.c[spec.timestamp], rank)
                 .where(match, t.c[spec.timestamp] <= when.to_pydatetime()).subquery())
        where = [inner.c.mp_rank == 1]
        if spec.max_age is not None:  # the newest row only, and only when it is recent enough
            where.append(inner.c[spec.timestamp] >= (when - pd.Timedelta(seconds=spec.max_age)).to_pydatetime())
        query = sa.select(*[inner.c[c] for c in [*spec.entity, *spec.features]]).where(*where)
        try:
            with self.engine().connect() as conn:
                found = {tuple(r[: len(spec.entity)]): dict(zip(spec.features, r[len(spec.entity):], strict=True))
                         for r in conn.execute(query).all()}
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"online_features: the lookup in {spec.table} failed: {exc}") from None
        return [found.get(tuple(k)) for k in keys]

    # ------------------------------------------------------------------ a predict body

    def enrich(self, instances: list[Any], names: Sequence[str]) -> list[Any]:
        """Fill each instance's missing features from the table, by its entity key.

        An instance that already holds every feature in ``names`` is left as it is (values
        sent win). One that carries the entity key(s) gets the missing features, and the
        key fields that are not model features are removed.

        Raises:
            RequestError: an instance needs features but its entity has no row in the table.
        """
        spec = self.spec
        wanted = [i for i, inst in enumerate(instances)
                  if isinstance(inst, dict) and all(k in inst for k in spec.entity)
                  and any(n not in inst for n in names)]
        if not wanted:
            return instances
        keys = [tuple(instances[i][k] for k in spec.entity) for i in wanted]
        found = self.lookup(keys)
        unknown = [keys[j] for j, row in enumerate(found) if row is None]
        if unknown:
            shown = [k[0] if len(k) == 1 else list(k) for k in unknown[:5]]
            raise RequestError(f"no online features for {'/'.join(spec.entity)} {shown} in {spec.table or spec.source}: "
                               "send the features in the instance, or add the entity to the feature table")
        out = list(instances)
        for i, row in zip(wanted, found, strict=True):
            assert row is not None  # checked above
            inst = {k: v for k, v in instances[i].items() if k in names or k not in spec.entity}
            out[i] = {**{f: _plain(v) for f, v in row.items() if f in names}, **inst}
        return out


def enrich_body(table: FeatureTable, body: bytes, names: Sequence[str]) -> bytes:
    """A predict body with its instances' missing features looked up (:meth:`FeatureTable.enrich`).

    A body that is not a JSON object with an ``instances`` list is returned as it is: the
    request parser then names what is wrong with it.
    """
    import orjson

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(doc, dict) or not isinstance(doc.get("instances"), list):
        return body
    instances = doc["instances"]
    enriched = table.enrich(instances, names)
    if enriched is instances:
        return body
    return orjson.dumps({**doc, "instances": enriched})


def _plain(value: Any) -> Any:
    """A table value as JSON has it (NumPy scalars and NaN become Python values and null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _resolve(base_dir: Any, path: str) -> Any:
    from pathlib import Path

    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(base_dir) / p


def join_online_features(df: pd.DataFrame, cfg: PilotConfig) -> pd.DataFrame:
    """The training data with ``online_features`` joined point-in-time (unchanged when not set).

    Raises:
        ConfigError: neither ``online_features.event_time`` nor ``model.time_column`` is set.
    """
    table = FeatureTable.of(cfg)
    if table is None:
        return df
    event_time = table.spec.event_time or cfg.model.time_column
    if not event_time:
        raise ConfigError("online_features needs the training rows' event time: set online_features.event_time "
                          "or model.time_column")
    return table.join(df, event_time)
