"""The model bundle: one scikit-learn ``Pipeline`` from a raw DataFrame to predictions.

Preprocessing travels inside the model file, so serving, batch scoring and monitoring
never re-implement it: the pipeline takes a DataFrame with the signature's columns and
does the rest.

* numeric columns → ``SimpleImputer(median)`` (plus ``StandardScaler`` for non-tree
  models: linear and distance-based models, and their solvers, need comparable scales);
* categorical columns → missing values (``NaN``, ``pd.NA`` and ``None`` alike) become the
  string :data:`MISSING` → cast to ``str`` (so ``True``, ``"a"`` and ``3`` from a JSON
  request compare like the training values) → :data:`MISSING` is replaced by the most
  frequent category (``SimpleImputer(most_frequent)``) → for tree models
  ``OrdinalEncoder`` (unknown categories become ``-1``), for every other model
  ``OneHotEncoder(handle_unknown="ignore")``.

The categorical chain computes what the earlier "impute NaN, then cast" chain did, with
two differences that matter: ``None`` (a JSON ``null``) is missing like ``NaN`` instead of
becoming the unknown category ``"None"`` (or not, depending on how pandas inferred the
column's dtype), and the imputer works on strings with a string marker, which ONNX can
express (:mod:`modelpilot.onnx`: the graph takes each categorical column as strings with
:data:`MISSING` for missing, and starts at the imputer). Versions trained with the
earlier chain still load and serve; they are only not converted to ONNX.

HistGradientBoosting *can* be told which output columns are ordinal codes
(``categorical_features``, it then splits on category sets and treats ``-1`` as
missing), but ``native_categories`` is off by default: the fitted estimator then holds an
internal ``FunctionTransformer(functools.partial(check_array))``, and
the model allowlist (``artifacts._allowlist``) refuses every ``functools.partial`` and
every function reference, because a crafted file could bind arguments to them. So the
codes are used as ordered numbers (trees still isolate a category with two splits). The cast uses
``numpy.asarray`` so the bundle holds only scikit-learn and NumPy objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from modelpilot.training.estimators import is_tree_model, supports_native_categories

if TYPE_CHECKING:
    from modelpilot.data import FeatureSpec

# HistGradientBoosting accepts at most max_bins (255) categories per feature; rarer ones
# are grouped into one "infrequent" code instead of failing on high-cardinality columns
_MAX_CATEGORIES = 250

#: What a missing category becomes before the most frequent category replaces it. A real
#: category spelt exactly like this is treated as missing.
MISSING = "__modelpilot_missing__"


def _categorical_steps(tree: bool) -> Pipeline:
    encoder: Any
    if tree:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=-1,
            encoded_missing_value=-1,
            max_categories=_MAX_CATEGORIES,
        )
    else:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return Pipeline(
        [
            # NaN and pd.NA, then None: SimpleImputer takes one missing marker at a time
            ("missing", SimpleImputer(strategy="constant", fill_value=MISSING)),
            ("missing_none", SimpleImputer(missing_values=None, strategy="constant", fill_value=MISSING)),
            ("as_str", _cast("str")),
            ("as_object", _cast("O")),  # SimpleImputer takes strings only in an object array
            ("impute", SimpleImputer(missing_values=MISSING, strategy="most_frequent")),
            ("encode", encoder),
        ]
    )


def _cast(dtype: str) -> FunctionTransformer:
    return FunctionTransformer(np.asarray, kw_args={"dtype": dtype}, feature_names_out="one-to-one")


# see the module docstring: models built with it are refused by the model allowlist
NATIVE_CATEGORIES = False


def build_pipeline(features: FeatureSpec, estimator: Any, *, native_categories: bool | None = None) -> Pipeline:
    """Preprocessing for ``features`` followed by ``estimator`` (unfitted).

    Args:
        features: the resolved feature spec (its ``numeric`` and ``categorical`` lists).
        estimator: an unfitted scikit-learn compatible estimator.
        native_categories: pass ``categorical_features`` to estimators that take it
            (default :data:`NATIVE_CATEGORIES`).

    Returns:
        ``Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])``.

    Example::

        >>> from types import SimpleNamespace
        >>> from sklearn.linear_model import LogisticRegression
        >>> p = build_pipeline(SimpleNamespace(numeric=["x"], categorical=["c"]), LogisticRegression())
        >>> [name for name, _ in p.steps]
        ['preprocess', 'model']
    """
    numeric, categorical = list(features.numeric), list(features.categorical)
    tree = is_tree_model(estimator)
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        impute = SimpleImputer(strategy="median")
        steps: Any = impute if tree else Pipeline([("impute", impute), ("scale", StandardScaler())])
        transformers.append(("numeric", steps, numeric))
    if categorical:
        transformers.append(("categorical", _categorical_steps(tree), categorical))
    pre = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    native = NATIVE_CATEGORIES if native_categories is None else native_categories
    if categorical and tree and native and supports_native_categories(estimator):
        # ColumnTransformer outputs the numeric block first, then the categorical codes
        mask = [False] * len(numeric) + [True] * len(categorical)
        estimator.set_params(categorical_features=mask)
    return Pipeline([("preprocess", pre), ("model", estimator)])


def feature_columns(features: FeatureSpec) -> list[str]:
    """The input columns in signature order (numeric, then categorical)."""
    return [*features.numeric, *features.categorical]
