"""Run a converted graph with onnxruntime: the inputs it takes and one call per batch.

Depends on NumPy and onnxruntime only (no scikit-learn, no pandas), so the same code
path serves the server and whatever runs the graph elsewhere. The graph's inputs are
described by the input schema :func:`modelpilot.onnx.convert` writes (one entry per
signature column, in signature order)::

    {"name": "plan", "kind": "categorical", "dtype": "string", "missing": "__modelpilot_missing__"}
    {"name": "age", "kind": "numeric", "dtype": "float32"}

* a numeric column is fed as ``float32`` of shape ``(n, 1)``; ``NaN`` is missing (the
  graph's imputer replaces it);
* a categorical column is fed as strings of shape ``(n, 1)``: ``str(value)``, and the
  schema's ``missing`` string for a missing value (``None``, ``NaN``, ``pd.NA``) — the
  exact casts the scikit-learn pipeline's first categorical steps make.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

InputSchema = list[dict[str, Any]]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return type(value).__name__ == "NAType"  # pandas.NA, without importing pandas


def _strings(values: Any, missing: str) -> np.ndarray:
    column = np.asarray(values, dtype=object).reshape(-1)
    out = [missing if _is_missing(v) else str(v) for v in column.tolist()]
    return np.array(out, dtype=object).reshape(-1, 1)


def feeds(schema: Sequence[Mapping[str, Any]], columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The graph's input tensors from one array-like per signature column.

    Args:
        schema: the input schema (see the module docstring).
        columns: ``{name: values}`` — NumPy arrays, lists or pandas Series of equal length.

    Raises:
        KeyError: a column of the schema is absent.
    """
    out: dict[str, np.ndarray] = {}
    for spec in schema:
        values = columns[spec["name"]]
        if spec["kind"] == "numeric":
            out[spec["name"]] = np.asarray(values, dtype=np.float32).reshape(-1, 1)
        else:
            out[spec["name"]] = _strings(values, spec["missing"])
    return out


class OnnxRunner:
    """An onnxruntime session over a converted graph (one thread, built once).

    Thread-safe: onnxruntime's ``InferenceSession.run`` may be called concurrently.

    Args:
        graph: the ONNX bytes.
        schema: the input schema written with the graph.
        output: the name of the output to return (``probabilities`` for classifiers,
            ``variable`` for regressors, as :func:`modelpilot.onnx.convert` records).
        threads: onnxruntime's intra-op threads (1: a server process is one unit).

    Raises:
        ImportError: onnxruntime is not installed.
        onnxruntime.capi.onnxruntime_pybind11_state.Fail (or InvalidGraph...): the bytes
            are not a graph onnxruntime can load.
    """

    def __init__(self, graph: bytes, schema: Sequence[Mapping[str, Any]], output: str, *,
                 threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.schema: InputSchema = [dict(s) for s in schema]
        self.output = output
        names = {o.name for o in self._session.get_outputs()}
        if output not in names:
            raise ValueError(f"the graph has no output {output!r} (it has {sorted(names)})")

    def run(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The chosen output as float64: ``(n, n_classes)`` probabilities or ``(n,)`` values."""
        result = self._session.run([self.output], feeds(self.schema, columns))[0]
        out = np.asarray(result, dtype=np.float64)
        return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 and self.output == "variable" else out
