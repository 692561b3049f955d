"""Fitted preprocessing steps compiled to plain NumPy, built once when a model loads.

A fitted ``SimpleImputer``, ``StandardScaler``, ``OrdinalEncoder``, ``OneHotEncoder`` or
``FunctionTransformer`` cast
spends almost all of a one-row ``transform`` validating its input (``check_array``,
dataframe detection, the unknown-category bookkeeping), not transforming it. The server
already holds validated NumPy columns, so :func:`compile_step` turns each of these fitted
steps into a closure over its *public* fitted attributes (``statistics_``, ``mean_``,
``scale_``, ``categories_``, ``drop_idx_``) that does only the arithmetic or the lookups:

* ``SimpleImputer`` (no indicator): on numbers NaN → ``statistics_``; on categories
  (object arrays) NaN, None or a string marker → ``statistics_``, as sklearn tests them;
* ``FunctionTransformer(np.asarray, kw_args={"dtype": ...})``: the cast itself;
* ``StandardScaler``: ``(x - mean_) / scale_``, the same two in-place operations;
* ``OrdinalEncoder``: a dict from category to code per column — a miss is the encoder's
  ``unknown_value`` (or the same ``ValueError`` as ``handle_unknown="error"``), the
  missing category (a trailing NaN in ``categories_``) is ``encoded_missing_value``;
* ``OneHotEncoder`` (dense output, ``drop_idx_`` honoured, unknown → all zeros).

Equality follows the encoders' own rule for object columns (Python ``==``/hash, None and
NaN as missing markers), so ``True`` finds a category ``1`` exactly as scikit-learn does.
Anything else (infrequent categories found at fit, sparse output, other missing markers, an unknown
class, even a subclass) is not compiled: the caller keeps the fitted transformer.
The caller still checks the whole compiled pipeline against the real one on probe rows
before using it (``fastpath.py``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

Transform = Callable[[np.ndarray], np.ndarray]
_NONE = np.array(None, dtype=object)  # compared elementwise: which cells hold None
_MISS = -2  # a dict miss: not a plain category (maybe NaN, maybe unknown)


def _is_nan(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isnan(value)


def compile_step(step: Any, kind: str | None) -> tuple[Transform, str] | None:
    """``(transform, output dtype kind)`` for a fitted step fed ``kind`` blocks, or None.

    Args:
        step: a fitted transformer.
        kind: the dtype kind of the blocks it will receive (``"f"`` float64, ``"O"``
            object) or None when unknown (nothing is compiled then).
    """
    compiler = _COMPILERS.get(type(step))
    if compiler is None or kind not in ("f", "O", "U"):
        return None
    return compiler(step, kind)


def _imputer(imp: Any, kind: str) -> tuple[Transform, str] | None:
    stats = np.asarray(imp.statistics_)
    if kind == "O":
        return _object_imputer(imp, stats)
    if (kind != "f" or imp.add_indicator or not _is_nan(imp.missing_values)
            or stats.dtype.kind != "f" or not np.isfinite(stats).all()):
        return None  # indicators, dropped all-missing columns: keep sklearn's
    stats = stats.astype(np.float64)

    def transform(x: np.ndarray) -> np.ndarray:
        missing = np.isnan(x)
        return np.where(missing, stats, x) if missing.any() else x

    return transform, "f"


def _object_imputer(imp: Any, stats: np.ndarray) -> tuple[Transform, str] | None:
    """Categories: ``missing_values`` (NaN, None or a string) → ``statistics_``, per column."""
    marker = imp.missing_values
    values = stats.tolist()
    if (imp.add_indicator or stats.dtype.kind != "O" or stats.ndim != 1
            or any(v is None or _is_nan(v) for v in values)):
        return None  # indicators, all-missing columns (sklearn drops them): keep sklearn's
    missing: Callable[[np.ndarray], np.ndarray]
    if marker is None:
        missing = lambda x: np.equal(x, _NONE)  # noqa: E731
    elif _is_nan(marker):
        missing = lambda x: x != x  # noqa: E731 - sklearn's own test for NaN in object arrays
    elif isinstance(marker, str):
        missing = lambda x: np.equal(x, marker)  # noqa: E731
    else:
        return None
    fill = np.empty(len(values), dtype=object)
    fill[:] = values

    def transform(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != len(fill):
            raise ValueError(f"expected {len(fill)} columns, got {x.shape}")
        mask = np.asarray(missing(x), dtype=bool)
        if not mask.any():
            return x
        out = x.copy()
        out[mask] = np.broadcast_to(fill, x.shape)[mask]
        return out

    return transform, "O"


def _cast(ft: Any, kind: str) -> tuple[Transform, str] | None:
    """``FunctionTransformer(np.asarray, kw_args={"dtype": ...})``: the cast itself."""
    kw = ft.kw_args or {}
    if ft.func is not np.asarray or set(kw) != {"dtype"} or ft.validate or ft.inverse_func is not None:
        return None
    dtype = np.dtype(kw["dtype"])

    def transform(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=dtype)

    return transform, dtype.kind


def _scaler(sc: Any, kind: str) -> tuple[Transform, str] | None:
    if kind != "f":
        return None
    mean = sc.mean_ if sc.with_mean else None
    scale = sc.scale_ if sc.with_std else None
    if (sc.with_mean and mean is None) or (sc.with_std and scale is None):
        return None

    def transform(x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64)
        if mean is not None:
            x -= mean
        if scale is not None:
            x /= scale
        return x

    return transform, "f"


class _Lookup:
    """Category → index in ``categories_`` for one column, -1 when unknown."""

    def __init__(self, categories: np.ndarray) -> None:
        values = categories.tolist()
        self.size = len(values)
        self.table = {v: i for i, v in enumerate(values) if not _is_nan(v)}
        nan_at = [i for i, v in enumerate(values) if _is_nan(v)]
        self.nan_index = nan_at[0] if nan_at else -1
        # the encoders' "missing" category: NaN in the last position (None is a category)
        self.missing_index = self.size - 1 if values and _is_nan(values[-1]) else -1

    def indices(self, column: list[Any]) -> list[int]:
        get = self.table.get
        found = [get(v, _MISS) for v in column]
        if _MISS in found:
            found = [i if i != _MISS else self._slow(v) for i, v in zip(found, column, strict=True)]
        return found

    def _slow(self, value: Any) -> int:
        return self.nan_index if self.nan_index >= 0 and _is_nan(value) else -1


def _plain_encoder(enc: Any) -> bool:
    """No infrequent-category grouping: none configured, or none found when fitted
    (``max_categories`` above every column's count of categories)."""
    if getattr(enc, "max_categories", None) is None and getattr(enc, "min_frequency", None) is None:
        return True
    try:
        return all(group is None for group in enc.infrequent_categories_)
    except AttributeError:
        return False


def _unknown_error(enc: Any, column: int, values: list[Any], idx: list[int]) -> ValueError:
    diff = sorted({repr(v) for v, i in zip(values, idx, strict=True) if i < 0})
    return ValueError(f"Found unknown categories [{', '.join(diff)}] in column {column} during transform")


def _ordinal(enc: Any, kind: str) -> tuple[Transform, str] | None:
    if not _plain_encoder(enc) or enc.handle_unknown not in ("error", "use_encoded_value"):
        return None
    dtype = np.dtype(enc.dtype)
    raise_unknown = enc.handle_unknown == "error"
    lookups: list[_Lookup] = []
    codes: list[np.ndarray] = []  # index -> output value; the extra last entry is "unknown"
    for cats in enc.categories_:
        look = _Lookup(np.asarray(cats))
        values: list[Any] = list(range(look.size))
        if look.missing_index >= 0:
            values[look.missing_index] = enc.encoded_missing_value
        values.append(0 if raise_unknown else enc.unknown_value)
        lookups.append(look)
        codes.append(np.array(values, dtype=np.float64).astype(dtype))
    width = len(lookups)

    def transform(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"expected {width} columns, got {x.shape}")
        out = np.empty(x.shape, dtype=dtype)
        for j, (look, code) in enumerate(zip(lookups, codes, strict=True)):
            values = x[:, j].tolist()
            idx = look.indices(values)
            if raise_unknown and -1 in idx:
                raise _unknown_error(enc, j, values, idx)
            out[:, j] = code[idx]
        return out

    return transform, dtype.kind


def _onehot(enc: Any, kind: str) -> tuple[Transform, str] | None:
    if not _plain_encoder(enc) or getattr(enc, "sparse_output", True):
        return None
    dtype = np.dtype(enc.dtype)
    raise_unknown = enc.handle_unknown == "error"
    drop = getattr(enc, "drop_idx_", None)
    lookups: list[_Lookup] = []
    columns: list[np.ndarray] = []  # index -> output column (or -1: all zeros)
    offset = 0
    for j, cats in enumerate(enc.categories_):
        look = _Lookup(np.asarray(cats))
        dropped = None if drop is None or drop[j] is None else int(drop[j])
        where = []
        for i in range(look.size):
            if i == dropped:
                where.append(-1)
            else:
                where.append(offset)
                offset += 1
        where.append(-1)  # unknown
        lookups.append(look)
        columns.append(np.array(where, dtype=np.intp))
    total, width = offset, len(lookups)

    def transform(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"expected {width} columns, got {x.shape}")
        n = x.shape[0]
        out = np.zeros((n, total), dtype=dtype)
        rows = np.arange(n)
        for j, (look, where) in enumerate(zip(lookups, columns, strict=True)):
            values = x[:, j].tolist()
            idx = look.indices(values)
            if raise_unknown and -1 in idx:
                raise _unknown_error(enc, j, values, idx)
            target = where[idx]
            hit = target >= 0
            out[rows[hit], target[hit]] = 1
        return out

    return transform, dtype.kind


_COMPILERS: dict[type, Callable[[Any, str], tuple[Transform, str] | None]] = {
    SimpleImputer: _imputer,
    StandardScaler: _scaler,
    OrdinalEncoder: _ordinal,
    OneHotEncoder: _onehot,
    FunctionTransformer: _cast,
}
