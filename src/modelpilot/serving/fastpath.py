"""A lean predict path for the standard model bundle, checked against the real pipeline.

For one row, a ``Pipeline(ColumnTransformer → estimator)`` spends most of its time in
the ColumnTransformer's pandas handling (column selection, dtype checks, feature-name
checks), not in the model: ~3 ms against ~0.5 ms on a busy 2-core machine. The server
already holds one NumPy column per feature, so for the common shape — a ColumnTransformer
whose transformers take lists of column names, remainder dropped, dense output — we feed
each fitted transformer its columns stacked as a NumPy block, ``hstack`` the blocks and
call the remaining steps directly.

Each fitted preprocessing step the server knows (imputer, scaler, ordinal and one-hot
encoders) is then compiled to plain NumPy over its public fitted attributes
(``compiled.py``): a one-row ``transform`` is almost all input validation, which the
server's columns do not need. Other steps run as fitted.

Safety: the fitted transformers that are not compiled are shallow copies without
``feature_names_in_`` (the name check is what NumPy input would trip; the columns are
already selected by name), the original pipeline is never modified, and
:func:`compile_pipeline` returns a function only after its output matched
``pipeline.predict_proba``/``predict`` exactly on probe rows. Anything else keeps the
plain pipeline.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.serving.compiled import Transform, compile_step

log = logging.getLogger(__name__)

Columns = dict[str, np.ndarray]
FastPredict = Callable[[Columns], np.ndarray]
_NONE = np.array(None, dtype=object)  # compared elementwise: which cells hold None


def nulls_as_nan(columns: Columns) -> Columns:
    """The columns with ``None`` in object columns replaced by ``NaN``.

    A JSON ``null`` arrives as ``None``. In a DataFrame, pandas turns it into ``NaN`` when a
    column holds only strings, and keeps ``None`` otherwise — so whether a pipeline saw a
    missing value or the category ``"None"`` depended on the other values of the request.
    The server decides once: a null is missing (``NaN``), like a missing value in training
    data; the fast path and the DataFrame path then agree on every row.
    """
    out = columns
    for name, col in columns.items():
        if col.dtype.kind != "O":
            continue
        nulls = np.equal(col, _NONE)
        if nulls.any():
            if out is columns:
                out = dict(columns)
            fixed = col.copy()
            fixed[nulls] = np.nan
            out[name] = fixed
    return out


def _strip(estimator: Any) -> Any:
    """A shallow copy that accepts NumPy input without the feature-name warning."""
    clone = copy.copy(estimator)
    if "feature_names_in_" in vars(clone):
        del clone.feature_names_in_
    return clone


def _chain(estimator: Any, kind: str | None) -> tuple[list[Transform], str | None]:
    """The step (or a nested Pipeline's steps) as transforms, compiled where possible;
    with the dtype kind of the output (None: unknown, later steps are not compiled)."""
    steps = ([s for _, s in estimator.steps if s not in (None, "passthrough")]
             if hasattr(estimator, "steps") else [estimator])
    out: list[Transform] = []
    for step in steps:
        compiled = compile_step(step, kind)
        if compiled is None:
            out.append(_strip(step).transform)
            kind = None
        else:
            transform, kind = compiled
            out.append(transform)
    return out, kind


def _apply(chain: list[Transform], block: np.ndarray) -> np.ndarray:
    for transform in chain:
        block = transform(block)
    return block


def _kind(arrays: list[np.ndarray]) -> str | None:
    kinds = {np.asarray(a).dtype.kind for a in arrays}
    if kinds <= {"f"}:
        return "f"
    return "O" if "O" in kinds else None


def compile_pipeline(pipeline: Any, names: tuple[str, ...], probe: Columns, *,
                     proba: bool) -> FastPredict | None:
    """A function ``columns -> predict_proba (or predict) output``, or None if unsupported.

    Args:
        pipeline: the fitted model bundle.
        names: the signature's feature names.
        probe: a few rows (one column per feature) the result must reproduce exactly.
        proba: compile ``predict_proba`` (classifiers) rather than ``predict``.
    """
    try:
        steps = [s for _, s in getattr(pipeline, "steps", [])]
        if len(steps) < 2 or not hasattr(steps[0], "transformers_"):
            return None
        ct = steps[0]
        if getattr(ct, "sparse_output_", False) or ct.remainder not in ("drop",):
            return None
        parts: list[tuple[list[Transform] | None, list[str]]] = []
        kinds = set()
        for _, transformer, cols in ct.transformers_:
            if transformer == "drop" or (hasattr(cols, "__len__") and len(cols) == 0):
                continue
            if not isinstance(cols, list | tuple) or not all(c in names for c in cols):
                return None
            block_kind = _kind([probe[c] for c in cols])
            if transformer == "passthrough":
                parts.append((None, list(cols)))
                kinds.add(block_kind)
            else:
                chain, out_kind = _chain(transformer, block_kind)
                parts.append((chain, list(cols)))
                kinds.add(out_kind)
        kind = next(iter(kinds)) if len(kinds) == 1 else None
        middle: list[Transform] = []
        for step in steps[1:-1]:
            chain, kind = _chain(step, kind)
            middle.extend(chain)
        final = steps[-1]
        method = final.predict_proba if proba else final.predict

        def predict(columns: Columns) -> np.ndarray:
            columns = nulls_as_nan(columns)
            blocks = []
            for chain, cols in parts:
                block = np.column_stack([columns[c] for c in cols])
                blocks.append(block if chain is None else _apply(chain, block))
            x = blocks[0] if len(blocks) == 1 else np.hstack(blocks)
            return np.asarray(method(_apply(middle, x)))

        frame = pd.DataFrame(nulls_as_nan(probe), copy=False)
        expected = pipeline.predict_proba(frame) if proba else pipeline.predict(frame)
        got = predict(probe)
        if got.shape != np.shape(expected) or not np.array_equal(got, np.asarray(expected)):
            log.info("fast predict path differs from the pipeline; using the pipeline")
            return None
        return predict
    except Exception:  # an unusual pipeline: the plain path always works
        log.debug("no fast predict path for this pipeline", exc_info=True)
        return None
