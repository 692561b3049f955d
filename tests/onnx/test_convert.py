"""Every default estimator converts, preprocessing included, and matches its pipeline."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from modelpilot.data.synth import customers
from modelpilot.onnx import PROBA_TOLERANCE, ConversionError, OnnxRunner, compare, convert
from modelpilot.training import build_pipeline, make_estimator
from modelpilot.training.estimators import DEFAULT_SPACES

NUMERIC = ["tenure_months", "support_calls", "age", "discount_pct"]
CATEGORICAL = ["plan", "region", "channel"]
SIGNATURE = [{"name": c, "type": "float"} for c in NUMERIC] + [{"name": c, "type": "category"} for c in CATEGORICAL]
# small ensembles: conversion is what is tested, not model quality
SMALL = {"max_iter": 20, "n_estimators": 15, "max_depth": 6}
SKLEARN_DEFAULTS = sorted(p for p in DEFAULT_SPACES if p.startswith("sklearn."))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = customers(1500, seed=3)
    rng = np.random.default_rng(0)
    for col in CATEGORICAL:  # missing categories as NaN and as None, like parquet and JSON give them
        df[col] = df[col].astype(object)
        df.loc[rng.random(len(df)) < 0.05, col] = np.nan
        df.loc[rng.random(len(df)) < 0.05, col] = None
    return df


def _fit(path: str, frame: pd.DataFrame, numeric: list[str] = NUMERIC) -> Any:
    task = "classification" if "Classifier" in path or "Logistic" in path else "regression"
    est = make_estimator(path, task, {}, seed=0)
    est.set_params(**{k: v for k, v in SMALL.items() if k in est.get_params()})
    target = "churned" if task == "classification" else "monthly_spend"
    pipe = build_pipeline(SimpleNamespace(numeric=numeric, categorical=CATEGORICAL), est)
    return pipe.fit(frame[numeric + CATEGORICAL], frame[target])


@pytest.mark.parametrize("path", SKLEARN_DEFAULTS)
def test_every_default_estimator_converts_within_tolerance(path: str, frame: pd.DataFrame) -> None:
    pipe = _fit(path, frame)
    converted = convert(pipe, SIGNATURE, frame[NUMERIC + CATEGORICAL])
    assert converted.parity.passed, converted.parity.describe()
    assert converted.parity.rows == len(frame) + 3  # plus the three probe rows
    assert [s["name"] for s in converted.inputs] == NUMERIC + CATEGORICAL
    # the graph answers like the pipeline on rows it was not checked on, missing values included
    rows = frame[NUMERIC + CATEGORICAL].tail(50).reset_index(drop=True)
    got = converted.runner().run({c: rows[c].to_numpy(dtype=object) for c in rows.columns})
    if converted.task == "classification":
        assert np.abs(got - pipe.predict_proba(rows)).max() <= PROBA_TOLERANCE
    else:
        assert np.abs(got - pipe.predict(rows)).max() <= 1e-4 * max(1.0, np.abs(pipe.predict(rows)).max())


def test_a_row_with_every_category_missing_is_imputed_like_training(frame: pd.DataFrame) -> None:
    pipe = _fit("sklearn.ensemble.HistGradientBoostingClassifier", frame)
    runner = convert(pipe, SIGNATURE, frame[NUMERIC + CATEGORICAL]).require_parity().runner()
    base = {c: [1.0] for c in NUMERIC}
    as_none = pd.DataFrame({**base, **{c: pd.Series([None], dtype=object) for c in CATEGORICAL}})
    as_nan = pd.DataFrame({**base, **{c: [np.nan] for c in CATEGORICAL}})
    most_frequent = pd.DataFrame({**base, **{c: [frame[c].mode()[0]] for c in CATEGORICAL}})
    expected = pipe.predict_proba(most_frequent)
    # None (a JSON null) and NaN are both missing, i.e. the most frequent category
    np.testing.assert_allclose(pipe.predict_proba(as_none), expected)
    np.testing.assert_allclose(pipe.predict_proba(as_nan), expected)
    got = runner.run({c: as_none[c].to_numpy(dtype=object) for c in as_none.columns})
    assert np.abs(got - expected).max() <= PROBA_TOLERANCE


def test_numeric_only_and_integer_categories_convert(frame: pd.DataFrame) -> None:
    df = frame.assign(plan=frame["plan"].map({"basic": 1, "plus": 2, "pro": 3}))  # ints + missing
    pipe = _fit("sklearn.linear_model.LogisticRegression", df)
    converted = convert(pipe, SIGNATURE, df[NUMERIC + CATEGORICAL])
    assert converted.parity.passed, converted.parity.describe()
    # a JSON 2 and the string "2" are the same category, as in the pipeline's str cast
    runner = converted.runner()
    row = {**{c: [1.0] for c in NUMERIC}, "region": ["north"], "channel": ["web"]}
    np.testing.assert_allclose(runner.run({**row, "plan": [2]}), runner.run({**row, "plan": ["2"]}))
    numeric = build_pipeline(SimpleNamespace(numeric=NUMERIC, categorical=[]),
                             make_estimator(None, "regression", {"max_iter": 10}, 0))
    numeric.fit(frame[NUMERIC], frame["monthly_spend"])
    only = convert(numeric, SIGNATURE[: len(NUMERIC)], frame[NUMERIC])
    assert only.parity.passed and only.task == "regression" and only.output == "variable"


def test_a_model_trained_with_the_earlier_categorical_chain_names_the_step(frame: pd.DataFrame) -> None:
    old_chain = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("as_str", FunctionTransformer(np.asarray, kw_args={"dtype": "str"}, feature_names_out="one-to-one")),
        ("encode", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
    ])
    ct = ColumnTransformer([("numeric", SimpleImputer(strategy="median"), NUMERIC), ("categorical", old_chain, CATEGORICAL)])
    pipe = Pipeline([("preprocess", ct), ("model", make_estimator(None, "classification", {"max_iter": 5}, 0))])
    pipe.fit(frame[NUMERIC + CATEGORICAL], frame["churned"])
    with pytest.raises(ConversionError, match=r"preprocess > categorical > impute \(SimpleImputer\).*retrain"):
        convert(pipe, SIGNATURE, frame[NUMERIC + CATEGORICAL])


def test_an_estimator_without_a_converter_names_the_step(frame: pd.DataFrame) -> None:
    pytest.importorskip("lightgbm")
    pipe = _fit("lightgbm.LGBMClassifier", frame)
    with pytest.raises(ConversionError, match=r"model \(LGBMClassifier\) has no ONNX converter"):
        convert(pipe, SIGNATURE, frame[NUMERIC + CATEGORICAL])


def test_bad_inputs_are_named(frame: pd.DataFrame) -> None:
    pipe = _fit("sklearn.linear_model.Ridge", frame)
    with pytest.raises(ConversionError, match=r"lack the signature's columns \[.support_calls., .age."):
        convert(pipe, SIGNATURE, frame[["tenure_months"]])
    with pytest.raises(ConversionError, match="no check rows"):
        convert(pipe, SIGNATURE, frame[NUMERIC + CATEGORICAL].head(0))
    with pytest.raises(ConversionError, match=r"Pipeline\(ColumnTransformer -> estimator\)"):
        convert(pipe.steps[-1][1], SIGNATURE, frame)


def test_parity_outside_tolerance_is_reported_and_refused(frame: pd.DataFrame) -> None:
    pipe = _fit("sklearn.ensemble.HistGradientBoostingClassifier", frame)
    converted = convert(pipe, SIGNATURE, frame[NUMERIC + CATEGORICAL])
    expected = pipe.predict_proba(frame[NUMERIC + CATEGORICAL])
    shifted = compare("classification", expected, expected[:, ::-1])
    assert not shifted.passed and shifted.label_mismatches > 0 and shifted.max_abs_diff > PROBA_TOLERANCE
    tie = compare("classification", np.array([[0.5, 0.5]]), np.array([[0.49999, 0.50001]]))
    assert tie.passed and tie.label_mismatches == 1 and tie.ties == 1
    broken = type(converted)(converted.graph, converted.inputs, converted.output, converted.task,
                             converted.classes, shifted)
    with pytest.raises(ConversionError, match="does not reproduce the pipeline.*OUTSIDE tolerance"):
        broken.require_parity()
    with pytest.raises(ValueError, match="no output 'nope'"):
        OnnxRunner(converted.graph, converted.inputs, "nope")
