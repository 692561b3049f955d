"""Synthetic data: realistic, reproducible, and its drift does what it says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from modelpilot.data import synth
from modelpilot.errors import DataError

CATS = ["plan", "region", "channel"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # OpenMP threads fighting over a shared 2-core machine make small fits 20x slower
    with threadpool_limits(1):
        yield


def _X(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["ts", "churned"]).astype({c: "category" for c in CATS})


def _fit(df: pd.DataFrame) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0).fit(
        _X(df), df["churned"])


def _acc(model: HistGradientBoostingClassifier, df: pd.DataFrame) -> float:
    return float((model.predict(_X(df)) == df["churned"].to_numpy()).mean())


def test_customers_shape_and_realism() -> None:
    df = synth.customers(4000, seed=1)
    assert list(df.columns) == ["ts", "tenure_months", "monthly_spend", "support_calls", "age",
                                "discount_pct", "plan", "region", "channel", "churned"]
    assert df["ts"].is_monotonic_increasing and df["ts"].is_unique
    assert df["ts"].iloc[0] >= pd.Timestamp("2026-01-01", tz="UTC")
    assert set(df["plan"]) == {"basic", "plus", "pro"}
    assert set(df["region"]) == {"north", "south", "east", "west"}
    assert set(df["channel"]) == {"web", "store", "phone"}
    assert set(df["churned"]) == {0, 1} and 0.2 < df["churned"].mean() < 0.45
    assert 0.01 < df["age"].isna().mean() < 0.06
    assert df.drop(columns="age").notna().all().all()
    pd.testing.assert_frame_equal(df, synth.customers(4000, seed=1))
    assert not df.equals(synth.customers(4000, seed=2))
    start = datetime(2025, 6, 1)
    assert synth.customers(10, seed=1, start=start)["ts"].iloc[0].month == 6


def test_customers_is_learnable_but_not_trivial() -> None:
    df = synth.customers(12000, seed=0)
    acc = _acc(_fit(df.iloc[:9000]), df.iloc[9000:])
    assert 0.78 < acc < 0.88


def test_customers_concept_drift_hurts_an_old_model() -> None:
    df = synth.customers(16000, seed=0, drift={"at": 0.5})
    model = _fit(df.iloc[:6000])
    before, after = _acc(model, df.iloc[6000:8000]), _acc(model, df.iloc[8000:])
    assert before - after > 0.15


def test_customers_segment_drift_only_in_that_segment() -> None:
    df = synth.customers(16000, seed=0, drift={"at": 0.5, "segment": "north"})
    model = _fit(df.iloc[:8000])
    late = df.iloc[8000:]
    hit = pd.Series(model.predict(_X(late)) == late["churned"].to_numpy()).groupby(
        late["region"].to_numpy()).mean()
    assert hit["north"] < 0.6
    assert hit.drop("north").min() > 0.78


def test_customers_drift_at_a_date_and_partial_strength() -> None:
    plain = synth.customers(3000, seed=4)
    at = plain["ts"].iloc[2000].to_pydatetime()
    df = synth.customers(3000, seed=4, drift={"at": at})
    pd.testing.assert_frame_equal(df.iloc[:2000], plain.iloc[:2000])  # nothing changes before
    assert not df["churned"].iloc[2000:].equals(plain["churned"].iloc[2000:])
    with pytest.raises(DataError, match=r"drift 'segment' 'mars' is not a region"):
        synth.customers(10, drift={"at": 0.5, "segment": "mars"})
    with pytest.raises(DataError, match=r"unknown drift option\(s\) \['when'\]"):
        synth.customers(10, drift={"when": 0.5})
    with pytest.raises(DataError, match=r"drift 'at' must be a fraction in \[0, 1\] or a datetime"):
        synth.customers(10, drift={"at": 3})


# --------------------------------------------------------------------------- scenarios


def _train_score(df: pd.DataFrame, train_end: int) -> tuple[HistGradientBoostingClassifier, pd.DataFrame]:
    X = df.drop(columns=["ts", "y"]).astype({"segment": "category"})
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(X.iloc[:train_end], df["y"].iloc[:train_end])
    return model, X


def _accuracy(model: HistGradientBoostingClassifier, X: pd.DataFrame, y: pd.Series,
              rows: slice) -> float:
    return float((model.predict(X.iloc[rows]) == y.iloc[rows].to_numpy()).mean())


@pytest.mark.parametrize("name", list(synth.SCENARIOS))
def test_scenario_columns_and_points(name: str) -> None:
    df, info = synth.scenario(name, 1200, seed=0, n_features=6)
    assert list(df.columns) == [f"x{i}" for i in range(6)] + ["segment", "ts", "y"]
    assert set(df["y"]) == {0, 1} and set(df["segment"]) == {"A", "B", "C"}
    assert df["ts"].is_monotonic_increasing
    assert all(0 < p < 1200 for p in info["drift_points"])
    assert info["description"]
    if name == "stationary":
        assert info["drift_points"] == []
    again, _ = synth.scenario(name, 1200, seed=0, n_features=6)
    pd.testing.assert_frame_equal(df, again)


def test_scenario_drift_points() -> None:
    assert synth.scenario("sudden", 3000, 0)[1]["drift_points"] == [1000, 2000]
    assert synth.scenario("recurring", 3000, 0, period=500)[1]["drift_points"] == [500, 1000, 1500, 2000, 2500]
    assert synth.scenario("gradual", 3000, 0)[1]["drift_points"] == [900, 2400]
    assert synth.scenario("covariate", 3000, 0)[1]["drift_points"] == [1500]


def test_sudden_drift_costs_an_old_model() -> None:
    df, info = synth.scenario("sudden", 6000, seed=0)
    p1, p2 = info["drift_points"]
    model, X = _train_score(df, p1 - 500)
    before = _accuracy(model, X, df["y"], slice(p1 - 500, p1))
    after = _accuracy(model, X, df["y"], slice(p1, p2))
    third = _accuracy(model, X, df["y"], slice(p2, None))
    assert before > 0.85
    assert before - after > 0.10 and before - third > 0.10


def test_covariate_shift_does_not_cost_an_old_model() -> None:
    df, info = synth.scenario("covariate", 6000, seed=0)
    (p,) = info["drift_points"]
    model, X = _train_score(df, p - 1000)
    before = _accuracy(model, X, df["y"], slice(p - 1000, p))
    after = _accuracy(model, X, df["y"], slice(p, None))
    # the inputs did move (a drift detector sees it) ...
    assert df["x0"].iloc[p:].mean() - df["x0"].iloc[:p].mean() > 0.3
    assert df["x1"].iloc[p:].std() / df["x1"].iloc[:p].std() > 1.3
    assert df["x4"].iloc[p:].mean() - df["x4"].iloc[:p].mean() > 0.5
    # ... but the concept did not: the old model is as right as before
    assert after > before - 0.02


def test_gradual_recurring_segment_and_stationary() -> None:
    df, info = synth.scenario("gradual", 6000, seed=1)
    start, end = info["drift_points"]
    model, X = _train_score(df, start)
    mid = (start + end) // 2
    early = _accuracy(model, X, df["y"], slice(start, start + 500))
    middle = _accuracy(model, X, df["y"], slice(mid - 250, mid + 250))
    late = _accuracy(model, X, df["y"], slice(end, None))
    assert early > middle > late and early - late > 0.3

    df, info = synth.scenario("recurring", 6000, seed=2, period=1000)
    model, X = _train_score(df, 800)
    accs = [_accuracy(model, X, df["y"], slice(i, i + 1000)) for i in range(1000, 6000, 1000)]
    assert accs[0] < 0.5 and accs[1] > 0.85 and accs[2] < 0.5 and accs[3] > 0.85

    df, info = synth.scenario("segment", 6000, seed=3)
    (p,) = info["drift_points"]
    model, X = _train_score(df, p)
    late = df.iloc[p:]
    hit = pd.Series(model.predict(X.iloc[p:]) == late["y"].to_numpy()).groupby(
        late["segment"].to_numpy()).mean()
    assert hit["A"] < 0.5 and hit["B"] > 0.85 and hit["C"] > 0.85

    df, _ = synth.scenario("stationary", 6000, seed=4)
    model, X = _train_score(df, 2000)
    assert abs(_accuracy(model, X, df["y"], slice(2000, 3000))
               - _accuracy(model, X, df["y"], slice(4000, None))) < 0.03


def test_scenario_errors() -> None:
    with pytest.raises(DataError, match=r"unknown scenario 'abrupt': choose one of stationary, sudden, gradual, recurring, segment, covariate"):
        synth.scenario("abrupt", 100, 0)
    with pytest.raises(DataError, match=r"n_features >= 3"):
        synth.scenario("sudden", 100, 0, n_features=2)


def test_scenario_uses_numpy_generation_for_large_streams() -> None:
    df, _ = synth.scenario("gradual", 100_000, seed=0, n_features=8)
    assert len(df) == 100_000 and np.isfinite(df.filter(like="x").to_numpy()).all()
