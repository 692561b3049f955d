"""The model allowlist is derived from real models: every supported estimator, both tasks.

Each estimator that ``training/estimators.py`` ships a search space for (plus the decision
trees) is fitted through the real bundle code (:func:`fit_final` → ``build_pipeline``) on
numeric, categorical and mixed features, for every target kind its task takes; every file
must pass the audit, load and predict exactly like the fitted object. The union of what
those files use must be the allowlist itself — an entry no real model needs fails the test.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from modelpilot.artifacts import ArtifactStore, load_model, open_artifacts, save_model
from modelpilot.artifacts._allowlist import ALLOWED, NUMPY_SCALARS, nodes, read_schema
from modelpilot.training.estimators import DEFAULT_SPACES
from modelpilot.training.fit import fit_final

ESTIMATORS = [*DEFAULT_SPACES, "sklearn.tree.DecisionTreeClassifier", "sklearn.tree.DecisionTreeRegressor"]
HAS_LIGHTGBM = importlib.util.find_spec("lightgbm") is not None
FEATURES = {
    "numeric": SimpleNamespace(numeric=["a", "b"], categorical=[]),
    "categorical": SimpleNamespace(numeric=[], categorical=["c", "d"]),
    "mixed": SimpleNamespace(numeric=["a", "b"], categorical=["c", "d"]),
}
# HistGradientBoostingRegressor keeps a different loss object for each ``loss``
HGB_LOSSES = [{"loss": "absolute_error"}, {"loss": "gamma"}, {"loss": "poisson"}, {"loss": "quantile", "quantile": 0.9}]


def _task(path: str) -> str:
    return "regression" if path.endswith(("Regressor", "Ridge")) else "classification"


def _data(n: int = 240) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(1, 6, n).astype(float),
            "c": rng.choice(["x", "y", "z"], n).astype(object),
            "d": rng.choice([True, False], n),
        }
    )
    X.loc[::7, "a"] = np.nan
    X.loc[::11, "c"] = None
    ys = {
        "binary": pd.Series((X["b"] > 2).astype(int)),
        "multiclass": pd.Series(rng.choice(["p", "q", "r"], n)),
        "boolean": pd.Series(X["b"] > 3),
        "regression": pd.Series(X["b"] * 2 + rng.random(n) + 0.5),
    }
    return X, ys


def _cases() -> list[Any]:
    cases = []
    for path in ESTIMATORS:
        marks = [] if HAS_LIGHTGBM or not path.startswith("lightgbm") else [pytest.mark.skip(reason="lightgbm is not installed")]
        targets = ["regression"] if _task(path) == "regression" else ["binary", "multiclass", "boolean"]
        for target in targets:
            for feats in FEATURES:
                cases.append(pytest.param(path, target, feats, {}, id=f"{path.rsplit('.', 1)[1]}-{target}-{feats}", marks=marks))
    for loss in HGB_LOSSES:
        cases.append(pytest.param("sklearn.ensemble.HistGradientBoostingRegressor", "regression", "mixed", loss,
                                  id=f"HistGradientBoostingRegressor-{loss['loss']}"))
    return cases


CASES = _cases()
_SEEN: set[tuple[str, str]] = set()


# small models below: the types in a file do not depend on the number of trees
def _fit(path: str, target: str, feats: str, extra: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    X, ys = _data()
    params: dict[str, Any] = {}
    if "HistGradient" in path:
        params = {"max_iter": 5}
    elif "Forest" in path or "ExtraTrees" in path or path.startswith("lightgbm"):
        params = {"n_estimators": 5}
    cols = [*FEATURES[feats].numeric, *FEATURES[feats].categorical]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of 5-round models are beside the point
        pipe, _ = fit_final(FEATURES[feats], X[cols], ys[target], estimator=path, task=_task(path),
                            params={**params, **extra}, seed=0)
    return pipe, X[cols]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    return open_artifacts(str(tmp_path_factory.mktemp("allowlist")))


@pytest.mark.parametrize(("path", "target", "feats", "extra"), CASES)
def test_every_supported_model_is_saved_loaded_and_predicts_identically(
    store: ArtifactStore, path: str, target: str, feats: str, extra: dict[str, Any]
) -> None:
    pipe, X = _fit(path, target, feats, extra)
    key = save_model(store, pipe)
    _SEEN.update(nodes(read_schema(store.get_bytes(key))))
    loaded = load_model(store, key)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    if hasattr(pipe, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_the_allowlist_is_exactly_what_real_models_use() -> None:
    """Runs after the models above (same module): nothing allowed that no model needs."""
    if len(_SEEN) == 0:
        pytest.skip("run with the model tests above")
    allowed = {(loader, name) for loader, names in ALLOWED.items() for name in names}
    seen = {pair for pair in _SEEN if pair[0] != "CachedNode"}
    assert seen <= allowed
    unused = allowed - seen
    # which NumPy scalar type or JSON literal a file holds depends on the data, not the estimator
    unused = {(loader, name) for loader, name in unused
              if not (name in NUMPY_SCALARS or loader == "JsonNode" or name.startswith("numpy.random.")
                      or (loader == "TypeNode" and name.startswith("builtins.")))}
    if not HAS_LIGHTGBM:
        unused = {(loader, name) for loader, name in unused if not name.startswith(("lightgbm.", "collections."))}
    assert unused == set(), f"allowed but used by no supported model: {sorted(unused)}"


def test_skops_alone_would_trust_less_precisely() -> None:
    """Why the exact list matters: skops' defaults trust every scikit-learn estimator class."""
    from sklearn.svm import SVC

    data = sio.dumps(SVC())
    assert sio.get_untrusted_types(data=data) == []  # skops would load it without a question
    with pytest.raises(Exception, match="not on the model allowlist"):
        from modelpilot.artifacts.models import check_model_bytes

        check_model_bytes(data, "an SVC")


def test_audit_reads_only_the_schema() -> None:
    pipe, _ = _fit("sklearn.linear_model.LogisticRegression", "binary", "mixed", {})
    schema = read_schema(sio.dumps(pipe))
    assert schema["__loader__"] == "ObjectNode" and schema["__class__"] == "Pipeline"
    with pytest.raises(ValueError, match="BadZipFile"):
        read_schema(io.BytesIO(b"not a zip").getvalue())
