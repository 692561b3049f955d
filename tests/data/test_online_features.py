"""One definition of online features: the training join and the serving lookup agree row by row.

The feature table is written to each backend (a Parquet snapshot held in memory, SQLite,
PostgreSQL); every training row's point-in-time features (DuckDB ASOF JOIN) must equal what
the serving lookup returns for the same entity at the row's event time, and both must equal
a plain pandas computation of "the last row at or before the time".
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import sqlalchemy as sa

from modelpilot.config import OnlineFeaturesConfig, PilotConfig
from modelpilot.data.online import FeatureTable, enrich_body, join_online_features
from modelpilot.errors import ConfigError, DataError, RequestError
from modelpilot.testing.services import unavailable

T0 = datetime(2026, 3, 1)
POSTGRES = os.environ.get("MODELPILOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def feature_rows(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    return pd.DataFrame({
        "customer": [f"c{i}" for i in rng.integers(0, 30, n)],
        "updated_at": [T0 + timedelta(minutes=int(m)) for m in rng.choice(20_000, n, replace=False)],
        "spend_30d": rng.gamma(2.0, 50.0, n).round(3),
        "plan": rng.choice(["free", "pro", "team"], n),
    })


def events(feats: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    times = [T0 + timedelta(minutes=int(m)) for m in rng.integers(-500, 21_000, n)]
    times[:20] = list(feats["updated_at"].iloc[:20])  # exactly at a feature row's time: included
    return pd.DataFrame({"customer": [*feats["customer"].iloc[:20], *[f"c{i}" for i in rng.integers(0, 32, n - 20)]],
                         "ts": times, "y": rng.integers(0, 2, n)})


def expected(feats: pd.DataFrame, customer: str, at: datetime, max_age: float | None = None) -> dict[str, Any] | None:
    mine = feats[(feats["customer"] == customer) & (feats["updated_at"] <= at)]
    if mine.empty:
        return None
    last = mine.sort_values("updated_at").iloc[-1]
    if max_age is not None and (at - last["updated_at"]).total_seconds() > max_age:
        return None
    return {"spend_30d": float(last["spend_30d"]), "plan": str(last["plan"])}


def spec(source: str, table: str | None = None) -> OnlineFeaturesConfig:
    return OnlineFeaturesConfig(source=source, table=table, entity=["customer"], timestamp="updated_at",
                                features=["spend_30d", "plan"])


@pytest.fixture(params=["parquet", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FeatureTable, pd.DataFrame]]:
    feats = feature_rows()
    if request.param == "parquet":
        feats.to_parquet(tmp_path / "features.parquet", index=False)
        yield FeatureTable(spec("features.parquet"), tmp_path), feats
        return
    url = f"sqlite:///{tmp_path / 'features.db'}" if request.param == "sqlite" else POSTGRES
    table = f"features_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            feats.to_sql(table, conn, index=False)
    except sa.exc.OperationalError as exc:
        unavailable(f"PostgreSQL not reachable at {POSTGRES} ({exc.orig}); set MODELPILOT_TEST_POSTGRES_URL")
    try:
        yield FeatureTable(spec(url, table)), feats
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE "{table}"'))
        engine.dispose()


def test_training_join_and_serving_lookup_agree_row_by_row(backend: tuple[FeatureTable, pd.DataFrame]) -> None:
    table, feats = backend
    rows = events(feats)
    joined = table.join(rows, "ts")
    assert list(joined.columns) == ["customer", "ts", "y", "spend_30d", "plan"]
    assert joined[["customer", "ts", "y"]].equals(rows)  # order and values kept
    served = table.lookup(list(zip(rows["customer"], strict=True)), as_of=None)  # now: the newest rows
    for i, row in rows.iterrows():
        truth = expected(feats, row["customer"], row["ts"])
        [at_event] = table.lookup([(row["customer"],)], as_of=row["ts"])
        trained = None if pd.isna(joined.at[i, "plan"]) else {
            "spend_30d": float(joined.at[i, "spend_30d"]), "plan": str(joined.at[i, "plan"])}
        assert trained == truth, (i, row.to_dict())
        assert (None if at_event is None else {"spend_30d": float(at_event["spend_30d"]),
                                               "plan": str(at_event["plan"])}) == truth
        latest = expected(feats, row["customer"], T0 + timedelta(days=365))
        got = served[int(str(i))]
        assert (None if got is None else {"spend_30d": float(got["spend_30d"]), "plan": str(got["plan"])}) == latest
    assert joined["plan"].isna().sum() > 0 and joined["plan"].notna().sum() > 200  # both cases occur


def test_max_age_makes_old_rows_missing_on_both_sides(backend: tuple[FeatureTable, pd.DataFrame]) -> None:
    table, feats = backend
    max_age = 6 * 3600.0  # rows are about 11 h apart per customer: many are too old
    aged = FeatureTable(table.spec.model_copy(update={"max_age": max_age}), table.base_dir)
    rows = events(feats)
    joined = aged.join(rows, "ts")
    stale = 0
    for i, row in rows.iterrows():
        truth = expected(feats, row["customer"], row["ts"], max_age)
        stale += truth is None and expected(feats, row["customer"], row["ts"]) is not None
        [served] = aged.lookup([(row["customer"],)], as_of=row["ts"])
        trained = None if pd.isna(joined.at[i, "plan"]) else {
            "spend_30d": float(joined.at[i, "spend_30d"]), "plan": str(joined.at[i, "plan"])}
        assert trained == truth and (None if served is None else {
            "spend_30d": float(served["spend_30d"]), "plan": str(served["plan"])}) == truth, (i, row.to_dict())
    assert stale > 20  # the limit did hide rows


def test_a_body_with_only_the_key_gets_the_features(tmp_path: Path) -> None:
    feats = feature_rows()
    feats.to_parquet(tmp_path / "f.parquet", index=False)
    table = FeatureTable(spec("f.parquet"), tmp_path)
    body = orjson.dumps({"instances": [{"customer": "c3", "tenure": 5}, {"spend_30d": 1.0, "plan": "pro",
                                                                            "tenure": 2}], "ids": ["a", "b"]})
    doc = orjson.loads(enrich_body(table, body, ["spend_30d", "plan", "tenure"]))
    latest = expected(feats, "c3", T0 + timedelta(days=365))
    assert doc["instances"][0] == {**(latest or {}), "tenure": 5}  # key removed: not a model feature
    assert doc["instances"][1] == {"spend_30d": 1.0, "plan": "pro", "tenure": 2}  # sent values untouched
    assert doc["ids"] == ["a", "b"]
    with pytest.raises(RequestError, match=r"no online features for customer \['nobody'\]"):
        enrich_body(table, orjson.dumps({"instances": [{"customer": "nobody", "tenure": 1}]}), ["spend_30d", "tenure"])
    assert enrich_body(table, b"not json", ["x"]) == b"not json"  # the parser reports it
    batch = events(feats).drop(columns="y")
    assert table.fill(batch, "ts").equals(table.join(batch, "ts"))  # a batch with its event time: point-in-time
    now = table.fill(batch.drop(columns="ts"), "ts")  # without: the latest rows, as a request
    assert now.loc[0, ["spend_30d", "plan"]].to_dict() == table.lookup([(batch.loc[0, "customer"],)])[0]
    with pytest.raises(DataError, match="needs the entity key"):
        table.fill(pd.DataFrame({"tenure": [1]}), None)


def test_configuration_mistakes_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="online_features.table is required"):
        PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "online_features": {
            "source": "sqlite:///f.db", "entity": ["c"], "timestamp": "t", "features": ["x"]}})
    cfg = PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "online_features": {
        "source": "f.parquet", "entity": ["customer"], "timestamp": "updated_at", "features": ["spend_30d"]}},
        base_dir=tmp_path)
    with pytest.raises(ConfigError, match="event time"):
        join_online_features(pd.DataFrame({"customer": ["c1"], "y": [1]}), cfg)
    feature_rows().to_parquet(tmp_path / "f.parquet", index=False)
    with pytest.raises(DataError, match=r"no column\(s\) \['ts'\]"):
        FeatureTable(spec("f.parquet"), tmp_path).join(pd.DataFrame({"customer": ["c1"]}), "ts")
    bad = OnlineFeaturesConfig(source="f.parquet", entity=["customer"], timestamp="updated_at", features=["nope"])
    with pytest.raises(DataError, match=r"column\(s\) \['nope'\] are not in"):
        FeatureTable(bad, tmp_path).frame()
