"""Exact contributions for every default estimator, through the product's own pipeline:
``base_value + sum(contributions) == output`` to 1e-6, the output is the model's own
(probability, raw score or prediction as documented), one-hot columns map back to their
feature, and each estimator gets its exact method rather than the model-agnostic walk."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.data import synth
from modelpilot.errors import DataError
from modelpilot.monitoring import build_reference
from modelpilot.monitoring.explain import baseline_row, explain
from modelpilot.training.estimators import make_estimator
from modelpilot.training.preprocess import build_pipeline

NUMERIC = ["tenure_months", "monthly_spend", "support_calls", "age", "discount_pct"]
CATEGORICAL = ["plan", "region", "channel"]
FEATURES = SimpleNamespace(numeric=NUMERIC, categorical=CATEGORICAL)
SMALL = {"n_estimators": 10, "max_iter": 10, "max_depth": 4}

# (estimator, method, output kind for a classifier)
CLASSIFIERS = [
    ("sklearn.ensemble.HistGradientBoostingClassifier", "tree_path", "raw_score"),
    ("sklearn.ensemble.RandomForestClassifier", "tree_path", "probability"),
    ("sklearn.ensemble.ExtraTreesClassifier", "tree_path", "probability"),
    ("sklearn.tree.DecisionTreeClassifier", "tree_path", "probability"),
    ("sklearn.linear_model.LogisticRegression", "linear", "raw_score"),
    ("lightgbm.LGBMClassifier", "lightgbm", "raw_score"),
]
REGRESSORS = [
    ("sklearn.ensemble.HistGradientBoostingRegressor", "tree_path"),
    ("sklearn.ensemble.RandomForestRegressor", "tree_path"),
    ("sklearn.ensemble.ExtraTreesRegressor", "tree_path"),
    ("sklearn.linear_model.Ridge", "linear"),
    ("lightgbm.LGBMRegressor", "lightgbm"),
]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    df = synth.customers(600, seed=3)
    # a few missing values: they take the trees' missing-value branches
    df.loc[df.index[::37], "monthly_spend"] = np.nan
    df.loc[df.index[::41], "plan"] = None
    return df


def fitted(path: str, task: str, X: pd.DataFrame, y: pd.Series) -> Any:
    if path.startswith("lightgbm"):
        pytest.importorskip("lightgbm", reason="lightgbm is an optional extra")
    cls = make_estimator(path, task, {}, seed=0)
    linear = path.startswith("sklearn.linear_model")
    params = {k: v for k, v in SMALL.items() if k in cls.get_params() and not linear}
    return build_pipeline(FEATURES, cls.set_params(**params)).fit(X, y)


def own_output(pipe: Any, rows: pd.DataFrame, kind: str) -> np.ndarray:
    if kind == "prediction":
        return np.asarray(pipe.predict(rows), dtype=float)
    if kind == "probability":
        proba = pipe.predict_proba(rows)
    else:
        model, Z = pipe[-1], pipe[:-1].transform(rows)
        proba = model.predict(Z, raw_score=True) if hasattr(model, "booster_") else model.decision_function(Z)
    proba = np.asarray(proba, dtype=float)
    return proba if proba.ndim == 1 else (proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1))


def check(pipe: Any, data: pd.DataFrame, classes: list[Any] | None, method: str, kind: str) -> None:
    cols = NUMERIC + CATEGORICAL
    base = baseline_row(build_reference(data[cols]), cols)
    rows = data[cols].head(40)
    e = explain(pipe, rows, base, classes=classes)
    assert (e.method, e.output_kind) == (method, kind)
    assert e.contributions.shape == (40, len(cols))
    np.testing.assert_allclose(e.output, own_output(pipe, rows, kind), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(e.base_value + e.contributions.sum(axis=1), e.output, rtol=0, atol=1e-6)
    # a feature the model never reads gets nothing; the features it reads get something
    assert np.abs(e.contributions).sum() > 0


@pytest.mark.parametrize(("path", "method", "kind"), CLASSIFIERS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_contributions_add_up(data: pd.DataFrame, path: str, method: str, kind: str, n_classes: int) -> None:
    y = data["churned"] if n_classes == 2 else pd.Series(np.digitize(data["age"], [35, 55]), index=data.index)
    pipe = fitted(path, "classification", data[NUMERIC + CATEGORICAL], y)
    check(pipe, data, list(pipe.classes_), method, kind)


@pytest.mark.parametrize(("path", "method"), REGRESSORS)
def test_regressor_contributions_add_up(data: pd.DataFrame, path: str, method: str) -> None:
    pipe = fitted(path, "regression", data[NUMERIC + CATEGORICAL], data["monthly_spend"].fillna(0) + 3 * data["tenure_months"])
    check(pipe, data, None, method, "prediction")


def test_one_hot_columns_are_summed_back_to_their_feature(data: pd.DataFrame) -> None:
    cols = NUMERIC + CATEGORICAL
    # a target that depends on the plan only: with one-hot columns (linear model), the whole
    # effect lands on "plan", and the row at the baseline's plan gets exactly 0 from it
    y = (data["plan"].fillna("basic") == "basic").astype(float) * 5.0
    pipe = fitted("sklearn.linear_model.Ridge", "regression", data[cols], y)
    base = baseline_row(build_reference(data[cols]), cols)
    e = explain(pipe, data[cols].head(60), base)
    plan = e.features.index("plan")
    others = np.delete(np.abs(e.contributions), plan, axis=1)
    assert np.abs(e.contributions[:, plan]).max() > 10 * others.max()
    same = (data["plan"].head(60) == base["plan"][0]).to_numpy()
    assert same.any() and np.allclose(e.contributions[same, plan], 0.0, atol=1e-12)


def test_walk_on_request_and_exact_refused_where_there_is_none(data: pd.DataFrame) -> None:
    cols = NUMERIC + CATEGORICAL
    base = baseline_row(build_reference(data[cols]), cols)
    pipe = fitted("sklearn.ensemble.RandomForestClassifier", "classification", data[cols], data["churned"])
    walked = explain(pipe, data[cols].head(5), base, classes=list(pipe.classes_), method="walk")
    assert walked.method == "baseline_walk"
    exact = explain(pipe, data[cols].head(5), base, classes=list(pipe.classes_))
    np.testing.assert_allclose(walked.output, exact.output, atol=1e-12)  # same output, other split

    class Opaque:  # no pipeline, no known model: only the walk applies
        classes_ = pipe.classes_

        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            return np.asarray(pipe.predict_proba(frame))

    assert explain(Opaque(), data[cols].head(5), base, classes=[0, 1]).method == "baseline_walk"
    with pytest.raises(DataError, match="no exact explanation"):
        explain(Opaque(), data[cols].head(5), base, classes=[0, 1], method="exact")
    with pytest.raises(DataError, match="unknown"):
        explain(pipe, data[cols].head(5), base, method="shap")
