"""What a model file may contain: exact (skops loader, type or function) pairs.

A skops file is a zip whose ``schema.json`` describes every object as a node: the
*loader* (how skops rebuilds it) and the *module* and *name* of the type or function the
loader imports. Several loaders call what they import — ``ConstructorFromReduceNode``
calls it with arguments from the file, ``ObjectNode`` runs its ``__setstate__``,
``OperatorFuncNode`` builds ``operator.attrgetter`` chains — so trusting whole modules
lets a crafted file call any function in them (``numpy.load(path, None, True)``
unpickles, ``numpy.testing._private.utils.runstring`` execs).

This module names, per loader, the exact types a modelpilot model is made of: the
pipeline of :mod:`modelpilot.training.preprocess` around each estimator that
:mod:`modelpilot.training.estimators` ships a search space for (scikit-learn's
HistGradientBoosting, random forests, extra trees, decision trees, logistic regression,
ridge; LightGBM). ``tests/artifacts/test_allowlist.py`` trains every one of them, for
classification and regression, on numeric and categorical features, and checks that
this list is exactly what those files use — no more. A loader that is not listed
(``FunctionNode``, ``MethodNode``, ``PartialNode``, ``OperatorFuncNode``,
``ConstructorFromReduceNode``, ``BytesNode``, ``SparseMatrixNode``...) is refused
whatever it names.

The audit reads the JSON only: nothing is imported before every node has passed.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

#: NumPy scalar types: arrays of them are rebuilt as ``numpy.<type>(array)``, which only
#: converts numbers. Fitted models store whichever their data produced.
NUMPY_SCALARS: frozenset[str] = frozenset(
    f"numpy.{name}"
    for name in (
        "bool", "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", "str_",
    )
)  # fmt: skip

_SKLEARN_PIPELINE = {
    "sklearn.pipeline.Pipeline",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._label.LabelEncoder",
}
_SKLEARN_ESTIMATORS = {
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.Ridge",
}
# HistGradientBoosting keeps its loss and link objects; one per ``loss`` option
_SKLEARN_LOSSES = {
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.loss.HalfGammaLoss",
    "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn._loss.loss.PinballLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.Interval",
}
_LIGHTGBM = {
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "lightgbm.basic.Booster",
}

#: loader name -> the exact ``module.name`` it may import. Loaders absent here are refused.
ALLOWED: dict[str, frozenset[str]] = {
    "ObjectNode": frozenset(_SKLEARN_PIPELINE | _SKLEARN_ESTIMATORS | _SKLEARN_LOSSES | _LIGHTGBM),
    "TreeNode": frozenset({"sklearn.tree._tree.Tree"}),
    "LossNode": frozenset(
        f"sklearn._loss._loss.Cy{name}"
        for name in (
            "HalfSquaredError", "AbsoluteError", "HalfGammaLoss", "HalfPoissonLoss", "PinballLoss",
            "HalfBinomialLoss", "HalfMultinomialLoss",
        )
    ),  # fmt: skip
    "NdArrayNode": frozenset({"numpy.ndarray"} | NUMPY_SCALARS),
    "DTypeNode": frozenset({"numpy.dtype"}),
    "RandomGeneratorNode": frozenset({"numpy.random._generator.Generator"}),
    # types kept as values (an encoder's ``dtype``, the categorical cast's ``numpy.asarray``)
    "TypeNode": frozenset(
        {"builtins.str", "builtins.int", "builtins.float", "builtins.bool", "numpy.asarray",
         "collections.OrderedDict"} | NUMPY_SCALARS
    ),  # fmt: skip
    "DictNode": frozenset({"builtins.dict"}),
    "DefaultDictNode": frozenset({"collections.defaultdict"}),
    "ListNode": frozenset({"builtins.list"}),
    "TupleNode": frozenset({"builtins.tuple"}),
    "SliceNode": frozenset({"builtins.slice"}),
    # JSON literals: skops parses the text and never imports the named type
    "JsonNode": frozenset(f"builtins.{t}" for t in ("str", "int", "float", "bool", "NoneType")),
    # not a skops loader: the bit generator class a ``Generator`` node names in its state
    "BitGenerator": frozenset(f"numpy.random.{name}" for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")),
}
#: a back-reference to a node already seen (and audited) in the same file
_CACHED = "CachedNode"


class UnsafeModelFile(ValueError):
    """The file holds a node outside :data:`ALLOWED`; ``refused`` names each one."""

    def __init__(self, refused: list[str]) -> None:
        super().__init__(", ".join(refused))
        self.refused = refused


def read_schema(data: bytes) -> dict[str, Any]:
    """The parsed ``schema.json`` of a skops file (the zip entry skops itself reads).

    Raises:
        ValueError: not a zip, no schema, or the schema is not a JSON object.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            raw = zf.read("schema.json")
        schema = json.loads(raw)
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(schema, dict):
        raise ValueError("schema.json is not a JSON object")
    return schema


def nodes(schema: Any) -> Iterator[tuple[str, str]]:
    """Every ``(loader, "module.name")`` in the schema, wherever it is nested.

    Any JSON object with a ``__loader__`` key is a node to skops, so every one is
    reported, not only those under the keys a well-formed file uses.
    """
    stack = [schema]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            if "__loader__" in obj:
                loader, module, name = obj.get("__loader__"), obj.get("__module__"), obj.get("__class__")
                yield (
                    loader if isinstance(loader, str) else repr(loader),
                    f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else repr((module, name)),
                )
                if loader == "RandomGeneratorNode":
                    yield "BitGenerator", f"numpy.random.{_bit_generator_name(obj)}"
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)


def _bit_generator_name(node: dict[str, Any]) -> str:
    try:
        name = json.loads(node["content"]["bit_generator"]["content"]["bit_generator"]["content"])
    except (KeyError, TypeError, ValueError):
        return "<missing>"
    return name if isinstance(name, str) else repr(name)


def audit(data: bytes) -> list[str]:
    """Check every node of a skops file against :data:`ALLOWED`.

    Returns:
        The sorted ``module.name`` of every type the file uses (what skops must be told
        to trust to load it).

    Raises:
        ValueError: the bytes are not a skops file.
        UnsafeModelFile: a node uses a loader or a type that is not allowed.
    """
    schema = read_schema(data)
    used: set[str] = set()
    refused: set[str] = set()
    for loader, name in nodes(schema):
        if loader == _CACHED:
            continue
        if name in ALLOWED.get(loader, ()):
            used.add(name)
        else:
            refused.add(f"{name} (as {loader})")
    if refused:
        raise UnsafeModelFile(sorted(refused))
    return sorted(used)
