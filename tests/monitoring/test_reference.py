from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pytest

from modelpilot.errors import DataError
from modelpilot.monitoring import build_reference


@dataclass(frozen=True)
class Spec:  # a FeatureSpec look-alike: build_reference only reads these two lists
    numeric: list[str]
    categorical: list[str]


def frame(rng: np.random.Generator, n: int = 5000) -> pd.DataFrame:
    x = rng.normal(size=n)
    x[:50] = np.nan
    x[50] = np.inf
    return pd.DataFrame({
        "x": x,
        "k": rng.integers(0, 3, n),
        "city": rng.choice(["paris", "rome", "oslo"], n),
        "flag": rng.random(n) < 0.3,
    })


def test_profile_fields_and_json_round_trip(rng) -> None:  # type: ignore[no-untyped-def]
    X = frame(rng)
    scores = rng.random(len(X))
    ref = build_reference(X, Spec(["x", "k"], ["city", "flag"]), scores, scores > 0.5)
    assert orjson.loads(orjson.dumps(ref)) == ref  # JSON-native, no NaN/inf, no numpy
    x = ref["columns"]["x"]
    assert x["missing"] == 51 and x["missing_fraction"] == pytest.approx(51 / 5000)
    assert len(x["proportions"]) == len(x["edges"]) + 1 == 10
    assert sum(x["proportions"]) == pytest.approx(1.0)
    assert x["sample"] == sorted(x["sample"]) and len(x["sample"]) <= 2000
    assert x["sample_cdf"][-1] == 1.0
    assert sum(x["histogram"]["counts"]) == 5000 - 51
    assert x["mean"] == pytest.approx(np.nanmean(X["x"][np.isfinite(X["x"])]))
    # a 3-valued integer column collapses to deduplicated edges
    assert ref["columns"]["k"]["edges"] == [0.0, 1.0, 2.0]
    city = ref["columns"]["city"]
    assert sorted(city["categories"]) == ["oslo", "paris", "rome"] and city["other"] == 0.0
    assert ref["columns"]["flag"]["categories"] == ["False", "True"]
    assert ref["score"]["type"] == "numeric" and ref["score"]["count"] == 5000
    assert ref["prediction"]["type"] == "categorical"
    assert ref["rows"] == 5000 and ref["numeric"] == ["x", "k"]


def test_top_k_pools_rare_categories_and_dtypes_are_inferred(rng) -> None:  # type: ignore[no-untyped-def]
    X = pd.DataFrame({"c": [f"v{i}" for i in rng.integers(0, 100, 3000)],
                      "n": rng.normal(size=3000),
                      "t": pd.date_range("2024-01-01", periods=3000, freq="min")})
    ref = build_reference(X, top_k=10)
    assert ref["numeric"] == ["n"] and ref["categorical"] == ["c"]  # datetime left out
    c = ref["columns"]["c"]
    assert len(c["categories"]) == 10 and c["unique"] == 100
    assert sum(c["proportions"]) + c["other"] == pytest.approx(1.0)


def test_inputs_are_not_mutated(rng) -> None:  # type: ignore[no-untyped-def]
    X = frame(rng)
    before = X.copy(deep=True)
    scores = rng.random(len(X))
    scores_before = scores.copy()
    build_reference(X, numeric=["x", "k"], categorical=["city"], scores=scores)
    pd.testing.assert_frame_equal(X, before)
    np.testing.assert_array_equal(scores, scores_before)


def test_multiclass_scores_reduce_to_confidence(rng) -> None:  # type: ignore[no-untyped-def]
    X = pd.DataFrame({"n": rng.normal(size=100)})
    proba = rng.dirichlet([1, 1, 1], size=100)
    ref = build_reference(X, scores=proba)
    assert ref["score"]["max"] == pytest.approx(proba.max(axis=1).max())


def test_errors_say_what_to_fix(rng) -> None:  # type: ignore[no-untyped-def]
    X = frame(rng, 100)
    with pytest.raises(DataError, match=r"columns \['age'\] are not in the data"):
        build_reference(X, numeric=["age"])
    with pytest.raises(DataError, match="scores has 3 rows but the features have 100"):
        build_reference(X, scores=[0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="need bins >= 2"):
        build_reference(X, bins=1)


def test_all_missing_column_profiles_cleanly() -> None:
    X = pd.DataFrame({"x": [np.nan] * 10, "c": [None] * 10})
    ref = build_reference(X, numeric=["x"], categorical=["c"])
    assert orjson.loads(orjson.dumps(ref)) == ref
    assert ref["columns"]["x"]["missing_fraction"] == 1.0 and ref["columns"]["x"]["mean"] is None
    assert ref["columns"]["c"]["missing_fraction"] == 1.0
