"""The compiled preprocessing steps give exactly what the fitted scikit-learn steps give.

Each case fits a real transformer, then feeds both it and its compiled form the same rows,
including missing values and categories never seen in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from modelpilot.serving.compiled import compile_step

RNG = np.random.default_rng(0)
NUMERIC_TRAIN = np.column_stack([RNG.normal(50, 10, 300), RNG.normal(0, 1, 300)])
NUMERIC_TRAIN[::17, 0] = np.nan
NUMERIC_NEW = np.array([[np.nan, 1.5], [42.0, np.nan], [1e6, -3.0]])
CATEGORIES_TRAIN = np.array(
    [["basic", "north"], ["plus", "south"], ["pro", "east"], ["basic", None], ["plus", "west"]] * 20, dtype=object
)
CATEGORIES_NEW = np.array([["pro", "north"], ["enterprise", "south"], [None, "mars"], ["basic", None]], dtype=object)


def _same(step: Any, train: np.ndarray, new: np.ndarray, kind: str) -> None:
    fitted = step.fit(train)
    compiled = compile_step(fitted, kind)
    assert compiled is not None, f"{type(step).__name__} was not compiled"
    transform, _ = compiled
    expected = fitted.transform(new.copy())
    got = transform(new.copy())
    np.testing.assert_array_equal(np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64))


@pytest.mark.parametrize("strategy", ["median", "mean", "most_frequent"])
def test_imputer(strategy: str) -> None:
    _same(SimpleImputer(strategy=strategy, fill_value=-1.0), NUMERIC_TRAIN, NUMERIC_NEW, "f")


def test_scaler() -> None:
    _same(StandardScaler(), np.nan_to_num(NUMERIC_TRAIN), np.nan_to_num(NUMERIC_NEW), "f")


def test_ordinal_encoder_with_unknown_and_missing_values() -> None:
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
    _same(enc, CATEGORIES_TRAIN, CATEGORIES_NEW, "O")


@pytest.mark.parametrize("drop", [None, "first", "if_binary"])
def test_one_hot_encoder(drop: str | None) -> None:
    enc = OneHotEncoder(handle_unknown="ignore" if drop is None else "infrequent_if_exist", drop=drop, sparse_output=False)
    train, new = CATEGORIES_TRAIN, CATEGORIES_NEW if drop is None else CATEGORIES_NEW[[0, 3]]
    _same(enc, train, new, "O")


def test_unknown_category_raises_like_the_encoder_when_configured_to() -> None:
    fitted = OrdinalEncoder().fit(CATEGORIES_TRAIN)
    compiled = compile_step(fitted, "O")
    assert compiled is not None
    with pytest.raises(ValueError):
        fitted.transform(CATEGORIES_NEW)
    with pytest.raises(ValueError):
        compiled[0](CATEGORIES_NEW.copy())


def test_what_cannot_be_compiled_is_left_to_the_fitted_step() -> None:
    sparse = OneHotEncoder(sparse_output=True).fit(CATEGORIES_TRAIN)
    assert compile_step(sparse, "O") is None
    assert compile_step(StandardScaler().fit(np.nan_to_num(NUMERIC_TRAIN)), None) is None
    # a constant fill keeps its statistics as objects: sklearn's own transform handles it
    assert compile_step(SimpleImputer(strategy="constant", fill_value=-1.0).fit(NUMERIC_TRAIN), "f") is None
