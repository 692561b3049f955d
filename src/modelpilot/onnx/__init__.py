"""ONNX: the model bundle as a graph that runs no Python code, checked against the pipeline.

A version's fitted pipeline converts (skl2onnx) to one ONNX graph — preprocessing
included — for every estimator modelpilot trains by default (HistGradientBoosting,
random forests, extra trees, decision trees, logistic regression, ridge; numeric and
categorical features). The graph is compared with the pipeline on the version's rows
within stated tolerances (:mod:`._parity`), recorded next to the skops file at register
time, served by onnxruntime when it passes, and is what edge bundles ship.

Public API (needs the ``edge`` extra: ``pip install 'modelpilot[edge]'``):

* :func:`convert` ``(pipeline, signature, check_frame) -> Converted`` — the graph bytes,
  the input schema, the output name and a :class:`Parity` report; raises
  :class:`ConversionError` naming the step that has no ONNX equivalent and the fix;
* :class:`OnnxRunner` ``(graph, inputs, output)`` — an onnxruntime session whose
  :meth:`~OnnxRunner.run` takes one array per column and returns float64 probabilities
  (classifiers) or predictions (regressors); :func:`feeds` builds the input tensors;
* :func:`compare` and the tolerances :data:`PROBA_TOLERANCE`, :data:`REGRESSION_TOLERANCE`.

Example::

    converted = convert(pipeline, record.signature, validation_rows).require_parity()
    probabilities = converted.runner().run({"age": [31.0], "plan": ["pro"]})
"""

from __future__ import annotations

from modelpilot.onnx._convert import (
    MAX_CHECK_ROWS,
    OPSET,
    ConversionError,
    Converted,
    available,
    convert,
)
from modelpilot.onnx._parity import PROBA_TOLERANCE, REGRESSION_TOLERANCE, Parity, compare
from modelpilot.onnx._runtime import InputSchema, OnnxRunner, feeds

__all__ = [
    "MAX_CHECK_ROWS",
    "OPSET",
    "PROBA_TOLERANCE",
    "REGRESSION_TOLERANCE",
    "ConversionError",
    "Converted",
    "InputSchema",
    "OnnxRunner",
    "Parity",
    "available",
    "compare",
    "convert",
    "feeds",
]
