"""Convert a fitted model bundle to one ONNX graph, checked against the pipeline.

The bundle is :func:`modelpilot.training.build_pipeline`'s ``Pipeline(ColumnTransformer
→ estimator)``. Its categorical branches start with *input casts* — constant imputers
that turn ``NaN``/``None`` into a string marker, then ``FunctionTransformer(np.asarray,
dtype=str|object)`` — which ONNX has no operator for and does not need: the graph takes
each categorical column as strings already, with the marker for a missing value, exactly
what those casts produce (:func:`modelpilot.onnx.feeds` makes them). So the graph is
converted from a view of the pipeline without those leading casts; every other step is
converted by skl2onnx as fitted. Numeric columns are ``float32`` inputs.

Nothing of the original pipeline is modified: the view is made of shallow copies.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import ModelpilotError
from modelpilot.onnx._parity import Parity, compare
from modelpilot.onnx._runtime import InputSchema, OnnxRunner

#: ONNX operator sets the graphs are written for (onnxruntime >= 1.14 runs them)
OPSET: dict[str, int] = {"": 17, "ai.onnx.ml": 3}
#: at most this many of the check rows are compared (plus the probe rows)
MAX_CHECK_ROWS = 2000
_INSTALL = "pip install 'modelpilot[edge]'"
# signature types fed as numbers (as the server's request schema parses them); the rest are categories
NUMERIC_TYPES = frozenset({"float", "int", "number", "bool"})
_UNKNOWN = "__modelpilot_unknown__"


class ConversionError(ModelpilotError):
    """The pipeline cannot be converted to ONNX (the message names the step and the fix)."""


@dataclass(frozen=True)
class Converted:
    """A converted pipeline: the graph, what it takes and returns, and how close it is.

    Attributes:
        graph: the ONNX model bytes.
        inputs: the input schema, one entry per graph input in signature order (see
            :mod:`modelpilot.onnx._runtime`).
        output: the output to read: ``"probabilities"`` (classifiers) or ``"variable"``.
        task: ``"classification"`` or ``"regression"``.
        classes: the class labels in probability-column order (classifiers).
        parity: the graph against the pipeline on the check rows.
        opset: the operator sets of the graph.
    """

    graph: bytes
    inputs: InputSchema
    output: str
    task: str
    classes: list[Any] | None
    parity: Parity
    opset: dict[str, int] = field(default_factory=lambda: dict(OPSET))

    def runner(self) -> OnnxRunner:
        """An onnxruntime session over :attr:`graph`."""
        return OnnxRunner(self.graph, self.inputs, self.output)

    def describe(self) -> dict[str, Any]:
        """Everything but the bytes, JSON-ready (what a registry records beside the graph)."""
        return {"inputs": [dict(s) for s in self.inputs], "output": self.output, "task": self.task,
                "parity": self.parity.to_dict(), "opset": dict(self.opset), "bytes": len(self.graph)}

    def require_parity(self) -> Converted:
        """Return self, or raise when the graph is outside the tolerance.

        Raises:
            ConversionError: the parity check failed (its figures are in the message).
        """
        if not self.parity.passed:
            raise ConversionError(
                f"the ONNX graph does not reproduce the pipeline: {self.parity.describe()}; "
                "keep serving the skops model for this version (and report the estimator and "
                "skl2onnx version: a converter is wrong)"
            )
        return self


def available() -> bool:
    """Whether skl2onnx and onnxruntime are installed (the ``edge`` extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("skl2onnx", "onnxruntime", "onnx"))


def convert(pipeline: Any, signature: Sequence[Mapping[str, Any]], check_frame: pd.DataFrame) -> Converted:
    """Convert a fitted bundle to ONNX and compare the graph with it on ``check_frame``.

    The check rows are the first :data:`MAX_CHECK_ROWS` of ``check_frame`` plus three probe
    rows made from its first row: every categorical column missing, every numeric column
    missing, every categorical column an unseen category.

    Args:
        pipeline: the fitted ``Pipeline(ColumnTransformer → estimator)``.
        signature: the version's signature (``[{"name", "type"}]``): the graph's inputs,
            in this order.
        check_frame: rows with the signature's columns (the version's validation rows).

    Returns:
        The :class:`Converted` graph; look at ``parity.passed`` (or call
        :meth:`Converted.require_parity`).

    Raises:
        ConversionError: skl2onnx/onnxruntime are missing, or a step has no ONNX
            equivalent (the step is named, with the fix), or ``check_frame`` is empty.

    Example::

        >>> from types import SimpleNamespace
        >>> from sklearn.linear_model import LogisticRegression
        >>> from modelpilot.training import build_pipeline
        >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "c": ["a", "b", "a", None]})
        >>> pipe = build_pipeline(SimpleNamespace(numeric=["x"], categorical=["c"]), LogisticRegression())
        >>> pipe = pipe.fit(X, [0, 0, 1, 1])
        >>> sig = [{"name": "x", "type": "float"}, {"name": "c", "type": "category"}]
        >>> converted = convert(pipe, sig, X)
        >>> converted.parity.passed
        True
    """
    if not available():
        raise ConversionError(f"ONNX conversion needs skl2onnx, onnx and onnxruntime: {_INSTALL}")
    names = [str(s["name"]) for s in signature]
    missing_cols = [n for n in names if n not in check_frame.columns]
    if missing_cols:
        raise ConversionError(f"the check rows lack the signature's columns {missing_cols}: pass "
                              "the version's validation rows (all signature columns)")
    if len(check_frame) == 0:
        raise ConversionError("no check rows: pass at least one row to compare the graph with")
    categorical = {str(s["name"]) for s in signature if s.get("type") not in NUMERIC_TYPES}
    view, kinds = _graph_view(pipeline, names, categorical)
    inputs: InputSchema = []
    for name in names:
        if name not in kinds:
            continue  # a column the pipeline drops is not a graph input
        marker = kinds[name]
        inputs.append({"name": name, "kind": "numeric", "dtype": "float32"} if marker is None
                      else {"name": name, "kind": "categorical", "dtype": "string", "missing": marker})
    task = "classification" if hasattr(pipeline, "predict_proba") and hasattr(pipeline, "classes_") else "regression"
    graph = _to_onnx(view, inputs, task)
    output = "probabilities" if task == "classification" else "variable"
    rows = _check_rows(check_frame[names], inputs)
    try:
        runner = OnnxRunner(graph, inputs, output)
        got = runner.run({c: rows[c] for c in rows.columns})
    except Exception as exc:  # onnxruntime refuses a graph skl2onnx wrote: a converter bug
        raise ConversionError(
            f"onnxruntime cannot run the converted graph ({exc}); keep the skops model for this "
            "version (a converter in skl2onnx produced a graph onnxruntime refuses)"
        ) from exc
    expected = pipeline.predict_proba(rows) if task == "classification" else pipeline.predict(rows)
    classes = list(np.asarray(pipeline.classes_).tolist()) if task == "classification" else None
    return Converted(graph, inputs, output, task, classes, compare(task, expected, got))


def _check_rows(frame: pd.DataFrame, inputs: InputSchema) -> pd.DataFrame:
    categorical = {s["name"]: object for s in inputs if s["kind"] == "categorical"}
    rows = frame.head(MAX_CHECK_ROWS).reset_index(drop=True).astype(categorical)
    probes = rows.iloc[[0, 0, 0]].reset_index(drop=True)
    for spec in inputs:
        if spec["kind"] == "categorical":
            probes[spec["name"]] = [None, probes.loc[1, spec["name"]], _UNKNOWN]
        else:
            probes[spec["name"]] = [probes.loc[0, spec["name"]], np.nan, probes.loc[2, spec["name"]]]
    return pd.concat([rows, probes], ignore_index=True)


# ---------------------------------------------------------------------------- the graph view


def _step_name(path: Sequence[str], step: Any) -> str:
    return f"{' > '.join(path)} ({type(step).__name__})"


def _is_cast(step: Any) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    kw = getattr(step, "kw_args", None) or {}
    return (type(step) is FunctionTransformer and step.func is np.asarray
            and set(kw) == {"dtype"} and str(np.dtype(kw["dtype"]).kind) in ("U", "O"))


def _constant_marker(step: Any) -> str | None:
    """The string a constant imputer writes for NaN/None, or None if it is not one."""
    from sklearn.impute import SimpleImputer

    missing = getattr(step, "missing_values", 0)
    missing_marker = missing is None or (isinstance(missing, float) and np.isnan(missing))
    if (type(step) is SimpleImputer and step.strategy == "constant" and not step.add_indicator
            and isinstance(step.fill_value, str) and missing_marker):
        return str(step.fill_value)
    return None


def _input_casts(steps: list[tuple[str, Any]]) -> tuple[int, str | None]:
    """How many leading steps are the categorical input casts, and their missing marker.

    They count only together: constant imputers with one string marker and at least one
    cast to ``str`` — then a string input with the marker for missing is what they make.
    """
    count, marker, cast = 0, None, False
    for _, step in steps:
        found = _constant_marker(step)
        if found is not None and marker in (None, found) and not cast:
            marker, count = found, count + 1
        elif _is_cast(step) and marker is not None:
            cast = cast or np.dtype(step.kw_args["dtype"]).kind == "U"
            count += 1
        else:
            break
    return (count, marker) if cast and marker is not None else (0, None)


def _graph_view(pipeline: Any, names: list[str], categorical: set[str]) -> tuple[Any, dict[str, str | None]]:
    """The pipeline without the categorical input casts, and each input column's kind
    (None: numeric, else the missing marker of a categorical column)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = getattr(pipeline, "steps", None)
    if not steps or type(steps[0][1]) is not ColumnTransformer or not hasattr(steps[0][1], "transformers_"):
        raise ConversionError(
            f"cannot convert a {type(pipeline).__name__} to ONNX: modelpilot converts the fitted "
            "Pipeline(ColumnTransformer -> estimator) that `modelpilot train` builds; train the "
            "model with modelpilot"
        )
    ct_name, ct = steps[0]
    kinds: dict[str, str | None] = {}
    transformers = []
    for name, transformer, cols in ct.transformers_:
        if transformer == "drop" or (hasattr(cols, "__len__") and len(cols) == 0):
            transformers.append((name, transformer, cols))
            continue
        if not isinstance(cols, list | tuple) or not all(c in names for c in cols):
            raise ConversionError(
                f"{ct_name} > {name} selects {cols!r}, not signature column names; ONNX inputs "
                "are the signature's columns: select columns by name"
            )
        chain = list(transformer.steps) if isinstance(transformer, Pipeline) else [(name, transformer)]
        count, marker = _input_casts(chain)
        if not count and categorical.intersection(map(str, cols)):
            raise ConversionError(
                f"{_step_name([ct_name, name, chain[0][0]], chain[0][1])} takes the categorical "
                f"column(s) {sorted(categorical.intersection(map(str, cols)))} without the string "
                "casts modelpilot's pipeline starts them with (missing -> a string marker, then "
                "str), so no ONNX string input can feed it: retrain the version with this modelpilot "
                "(`modelpilot train`), whose pipeline converts"
            )
        if count:
            rest = chain[count:]
            transformer = Pipeline(rest) if rest else "passthrough"
        for col in cols:
            kinds[str(col)] = marker
        for step_name, step in chain[count:]:
            _check_convertible([ct_name, name, step_name], step)
        transformers.append((name, transformer, cols))
    view_ct = copy.copy(ct)
    view_ct.transformers_ = transformers
    for step_name, step in steps[1:]:
        _check_convertible([step_name], step)
    return Pipeline([(ct_name, view_ct), *steps[1:]]), kinds


def _check_convertible(path: list[str], step: Any) -> None:
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer

    where = _step_name(path, step)
    if isinstance(step, FunctionTransformer):
        raise ConversionError(
            f"{where} has no ONNX equivalent: a FunctionTransformer runs arbitrary Python. "
            "Versions trained before modelpilot marked missing categories with a string cast "
            "their categories this way after imputing: retrain the version (`modelpilot train`) "
            "to get a pipeline that converts"
        )
    if isinstance(step, SimpleImputer) and not isinstance(step.missing_values, str) and getattr(step, "statistics_", np.zeros(0)).dtype.kind == "O":
        raise ConversionError(
            f"{where} imputes categories with NaN as the missing marker, which ONNX string "
            "tensors cannot hold: retrain the version (`modelpilot train`) so missing "
            "categories are marked with a string before imputing"
        )
    if hasattr(step, "steps"):
        for name, inner in step.steps:
            _check_convertible([*path, name], inner)
        return
    if type(step) not in sklearn_operator_name_map:
        raise ConversionError(
            f"{where} has no ONNX converter in skl2onnx: serve this version from its skops "
            "file, or train with an estimator skl2onnx converts (HistGradientBoosting, "
            "RandomForest, ExtraTrees, DecisionTree, LogisticRegression, Ridge)"
        )


def _to_onnx(view: Any, inputs: InputSchema, task: str) -> bytes:
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial = [(s["name"], FloatTensorType([None, 1]) if s["kind"] == "numeric" else StringTensorType([None, 1]))
               for s in inputs]
    final = view.steps[-1][1]
    options = {id(final): {"zipmap": False}} if task == "classification" else None
    try:
        with warnings.catch_warnings():
            # skl2onnx 1.20's HistGradientBoosting converter hands booleans to an int field;
            # protobuf 6 warns (protobuf 7 refuses: the edge extra pins protobuf<7)
            warnings.filterwarnings("ignore", message="Field onnx.AttributeProto", category=DeprecationWarning)
            model = skl2onnx.convert_sklearn(view, initial_types=initial, options=options,
                                             target_opset=dict(OPSET))
    except Exception as exc:  # skl2onnx raises RuntimeError/NotImplementedError/... per converter
        raise ConversionError(
            f"skl2onnx cannot convert the pipeline ({type(final).__name__}): {exc}; serve this "
            "version from its skops file"
        ) from exc
    data: bytes = model.SerializeToString()
    return data
