"""Models saved with skops and loaded only when every object in them is on the allowlist."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from modelpilot.artifacts import ArtifactStore, load_model, open_artifacts, save_model
from modelpilot.errors import ArtifactError, ArtifactNotFound
from modelpilot.testing.artifact_suite import overwrite_raw
from modelpilot.testing.s3 import S3Server


class Doubler(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A user-defined transformer: skops can save it, but loading would run our code."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        self.fitted_ = True
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return open_artifacts(str(tmp_path / "artifacts"))
    s3: S3Server = request.getfixturevalue("s3_bucket")
    return open_artifacts(s3.url("models"), s3.options)


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(42)
    n = 300
    X = pd.DataFrame(
        {
            "tenure": rng.normal(24, 8, n),
            "spend": rng.gamma(2.0, 30.0, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    X.loc[::9, "tenure"] = np.nan
    y = ((X["spend"] > 60) ^ (X["region"] == "east")).to_numpy().astype(int)
    return X, y


def _pipeline() -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), ["tenure", "spend"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    return Pipeline([("pre", pre), ("clf", HistGradientBoostingClassifier(max_iter=20))])


def test_pipeline_round_trips_and_predicts_identically(
    store: ArtifactStore, frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = frame
    model = _pipeline().fit(X, y)
    key = save_model(store, model)
    assert key.startswith("sha256/") and key.endswith(".skops")
    loaded = load_model(store, key)
    assert isinstance(loaded, Pipeline)
    assert loaded is not model
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)


def test_custom_estimator_is_refused_when_saved(
    store: ArtifactStore, frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = frame
    model = Pipeline([("double", Doubler()), ("clf", LogisticRegression())]).fit(X[["spend"]], y)
    with pytest.raises(
        ArtifactError,
        match=r"refusing the Pipeline model: it contains types that are not on the model allowlist: "
        r"\['(tests\.artifacts\.)?test_models\.Doubler \(as ObjectNode\)'\]\. modelpilot never runs code",
    ):
        save_model(store, model)


@pytest.mark.parametrize(
    ("func", "name"),
    [
        (eval, "builtins.eval (as TypeNode)"),
        (functools.partial(np.add, 1), "functools.partial (as PartialNode)"),
        (np.log1p, "numpy.log1p (as FunctionNode)"),  # a library function is still a function
    ],
)
def test_functions_are_refused(store: ArtifactStore, func: Any, name: str) -> None:
    with pytest.raises(ArtifactError, match=re.escape(name)):
        save_model(store, FunctionTransformer(func=func))


def test_the_categorical_cast_of_the_bundle_is_loaded(store: ArtifactStore) -> None:
    model = FunctionTransformer(np.asarray, kw_args={"dtype": "str"}).fit(np.ones((2, 1)))
    loaded = load_model(store, save_model(store, model))
    assert loaded.transform(np.array([[1], [2]])).tolist() == [["1"], ["2"]]


def test_not_a_skops_file(store: ArtifactStore) -> None:
    key = store.put_bytes(b"definitely not a zip", suffix=".skops")
    with pytest.raises(ArtifactError, match="is not a skops model file"):
        load_model(store, key)


def test_corrupt_model_is_not_loaded(store: ArtifactStore) -> None:
    key = save_model(store, LogisticRegression())
    overwrite_raw(store, key, store.get_bytes(key)[:-10])
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_model(store, key)


def test_missing_model(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound, match="no artifact 'sha256/00/"):
        load_model(store, "sha256/00/" + "0" * 62 + ".skops")


def test_unserialisable_estimator(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactError, match="cannot save dict as a skops file"):
        save_model(store, {"gen": (i for i in range(3))})
