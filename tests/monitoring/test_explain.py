"""Model-agnostic contributions: exact additivity, sensible attribution, attribution drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LinearRegression

from modelpilot.errors import DataError
from modelpilot.monitoring import build_reference
from modelpilot.monitoring.explain import (
    attribution_drift,
    baseline_row,
    explain,
    mean_abs_contributions,
)


def frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "noise": rng.normal(size=n)})


def test_linear_model_contributions_are_the_coefficients_times_the_distance(rng) -> None:  # type: ignore[no-untyped-def]
    X = frame(rng, 500)
    model = LinearRegression().fit(X, 3 * X["a"] - 2 * X["b"])
    base = baseline_row(build_reference(X), list(X.columns))
    e = explain(model, X.head(20), base)
    # for an additive model every order gives the same, exact attribution
    np.testing.assert_allclose(e.contributions[:, 0], 3 * (X["a"].head(20) - base["a"][0]), atol=1e-9)
    np.testing.assert_allclose(e.contributions[:, 2], 0.0, atol=1e-9)
    np.testing.assert_allclose(e.base_value + e.contributions.sum(axis=1), model.predict(X.head(20)), atol=1e-12)


@pytest.mark.parametrize("classes", [2, 3])
def test_contributions_add_up_for_trees_and_classifiers(rng, classes) -> None:  # type: ignore[no-untyped-def]
    X = frame(rng, 600)
    X["c"] = rng.choice(["x", "y"], 600)
    y = np.digitize(X["a"] + (X["c"] == "x"), [-0.5, 0.5][: classes - 1])
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(pd.get_dummies(X), y)

    class Wrapped:  # a pipeline stand-in that takes the raw frame (one-hot inside)
        classes_ = model.classes_

        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            dummies = pd.get_dummies(frame).reindex(columns=pd.get_dummies(X).columns, fill_value=False)
            return model.predict_proba(dummies)

    base = baseline_row(build_reference(X), list(X.columns))
    rows = X.head(30)
    e = explain(Wrapped(), rows, base, classes=list(model.classes_))
    proba = model.predict_proba(pd.get_dummies(rows).reindex(columns=pd.get_dummies(X).columns, fill_value=False))
    out = proba[:, 1] if classes == 2 else proba.max(axis=1)
    np.testing.assert_allclose(e.output, out, atol=1e-12)
    np.testing.assert_allclose(e.base_value + e.contributions.sum(axis=1), out, atol=1e-12)
    importance = mean_abs_contributions(e)
    assert importance["a"] > importance["noise"]


def test_attribution_drift_flags_the_feature_the_model_leans_on_now(rng) -> None:  # type: ignore[no-untyped-def]
    X = frame(rng, 2000)
    # the model uses b only where a > 1: rare in the reference, common after the shift
    model = HistGradientBoostingRegressor(max_iter=50).fit(X, X["a"] + 3 * X["b"] * (X["a"] > 1))
    base = baseline_row(build_reference(X), list(X.columns))
    ref = mean_abs_contributions(explain(model, X.head(300), base, method="walk"))
    shifted = frame(rng, 300).assign(a=lambda f: f["a"] + 2.0)
    drift = attribution_drift(ref, mean_abs_contributions(explain(model, shifted, base, method="walk")))
    assert "b" in drift["flagged"] and drift["features"]["b"]["change"] > 0.1
    assert attribution_drift(ref, ref)["flagged"] == []
    # path contributions already credit b with part of the interaction on the reference
    # rows (their expected values are conditional on the path), so its share moves less
    # but the same way
    exact_ref = mean_abs_contributions(explain(model, X.head(300), base))
    exact = attribution_drift(exact_ref, mean_abs_contributions(explain(model, shifted, base)))
    assert exact["features"]["b"]["change"] > 0.03
    with pytest.raises(DataError, match="reference profile"):
        baseline_row({"columns": {}}, ["a"])
