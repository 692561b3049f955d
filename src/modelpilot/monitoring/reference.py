"""Reference profiles: what the training data looked like, as a JSON-serialisable dict.

A profile is made once, at training time, and stored as a JSON artifact next to the model.
Every drift method scores live data against it, so the training frame never has to be
loaded again. Layout (``format`` = ``"modelpilot.reference/1"``)::

    {"format": ..., "rows": int, "numeric": [names], "categorical": [names],
     "columns": {name: column profile}, "score": column profile | None,
     "prediction": column profile | None}

A numeric column profile holds inner quantile bin ``edges`` (the outer edges are implicitly
-inf/+inf, because JSON has no infinity), the reference ``proportions`` of non-missing
values per bin (bins are right-closed: ``(e[i-1], e[i]]``), an equal-width ``histogram``
for plots, ``mean``/``std``/``min``/``max``, the ``missing`` count, and ``sample``: at most
``sample_size`` sorted reference order statistics taken at evenly spaced ranks, with
``sample_cdf``, the exact reference ECDF at those points. KS and Wasserstein scored against
a profile are therefore approximate: both ECDFs are compared at the stored reference points
only, so the KS statistic can be off by about ``1/sample_size`` and Wasserstein by about
``range/sample_size`` (the p-values still use the full reference row count). Non-finite
values (NaN, ±inf) count as missing.

A categorical column profile holds the ``top_k`` most frequent ``categories`` (as strings)
with their ``proportions`` over all rows, ``other`` (the share of every other category),
the ``missing`` count and the number of ``unique`` values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from modelpilot.errors import DataError

PROFILE_FORMAT = "modelpilot.reference/1"
OTHER = "__other__"
MISSING = "__missing__"


class FeatureLists(Protocol):
    """Anything with ``numeric`` and ``categorical`` column lists (e.g. ``FeatureSpec``)."""

    @property
    def numeric(self) -> list[str]: ...

    @property
    def categorical(self) -> list[str]: ...


def infer_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Split a frame's columns by dtype: numbers are numeric, bool/text/category categorical.

    Datetime columns are neither (they drift by construction) and are left out.
    """
    numeric: list[str] = []
    categorical: list[str] = []
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            categorical.append(str(name))
        elif pd.api.types.is_numeric_dtype(dtype):
            numeric.append(str(name))
        elif not pd.api.types.is_datetime64_any_dtype(dtype):
            categorical.append(str(name))
    return numeric, categorical


def resolve_columns(
    frame: pd.DataFrame,
    features: FeatureLists | None = None,
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """The numeric and categorical columns to profile, checked against ``frame``.

    Explicit ``numeric``/``categorical`` win over ``features``; with neither, the columns
    are inferred from dtypes (:func:`infer_columns`).

    Raises:
        DataError: a named column is not in ``frame``.
    """
    if numeric is None and categorical is None and features is not None:
        numeric, categorical = list(features.numeric), list(features.categorical)
    if numeric is None and categorical is None:
        return infer_columns(frame)
    num, cat = list(numeric or []), list(categorical or [])
    missing = [c for c in [*num, *cat] if c not in frame.columns]
    if missing:
        raise DataError(
            f"columns {missing} are not in the data (it has {list(map(str, frame.columns))}); "
            "fix the feature lists or pass a frame that holds these columns"
        )
    return num, cat


def finite_sorted(values: ArrayLike | pd.Series) -> tuple[NDArray[np.float64], int]:
    """Sorted finite float64 values and the total row count (non-finite = missing)."""
    if isinstance(values, pd.Series):
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
            values.dtype
        ):
            values = pd.to_numeric(values, errors="coerce")
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(values, dtype=np.float64)
    arr = arr.ravel()
    # np.sort copies, so the caller's data is never reordered; SIMD sort makes this cheap
    return np.sort(arr[np.isfinite(arr)]), int(arr.size)


def profile_numeric(
    values: ArrayLike | pd.Series, *, bins: int = 10, sample_size: int = 2000
) -> dict[str, Any]:
    """Profile one numeric column (see the module docstring for the fields)."""
    xs, rows = finite_sorted(values)
    n = xs.size
    out: dict[str, Any] = {"type": "numeric", "count": rows, "missing": rows - n}
    out["missing_fraction"] = (rows - n) / rows if rows else 0.0
    if n == 0:
        out.update(mean=None, std=None, min=None, max=None, edges=[], proportions=[0.0],
                   histogram={"edges": [], "counts": []}, sample=[], sample_cdf=[])
        return out
    out.update(mean=float(xs.mean()), std=float(xs.std()), min=float(xs[0]), max=float(xs[-1]))
    # order statistics at the inner quantile ranks, deduplicated (discrete columns collapse)
    ranks = np.floor(np.arange(1, bins) / bins * (n - 1)).astype(np.int64)
    edges = np.unique(xs[ranks])
    counts = np.diff(np.searchsorted(xs, edges, side="right"), prepend=0, append=n)
    hist_counts, hist_edges = np.histogram(xs, bins=20)
    m = min(sample_size, n)
    sample = np.unique(xs[np.round(np.linspace(0, n - 1, m)).astype(np.int64)])
    out.update(
        edges=edges.tolist(),
        proportions=(counts / n).tolist(),
        histogram={"edges": hist_edges.tolist(), "counts": hist_counts.tolist()},
        sample=sample.tolist(),
        sample_cdf=(np.searchsorted(xs, sample, side="right") / n).tolist(),
    )
    return out


def profile_categorical(values: ArrayLike | pd.Series, *, top_k: int = 50) -> dict[str, Any]:
    """Profile one categorical column: top ``top_k`` category shares, ``other``, missing."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    rows = int(series.size)
    counts = category_counts(series)
    n_missing = rows - int(counts.sum())
    top = counts.iloc[:top_k]
    denom = rows or 1
    return {
        "type": "categorical",
        "count": rows,
        "missing": n_missing,
        "missing_fraction": n_missing / denom,
        "categories": [str(v) for v in top.index],
        "proportions": (top.to_numpy(dtype=np.float64) / denom).tolist(),
        "other": float(counts.iloc[top_k:].sum()) / denom,
        "unique": int(counts.size),
    }


def category_counts(series: pd.Series) -> pd.Series:
    """Counts per category, keyed by the category's string form, most frequent first.

    Counting happens on the raw values and only the (few) distinct values are turned into
    strings, so a million rows cost one hash pass, not a million ``str()`` calls.
    """
    counts = series.value_counts(dropna=True, sort=False)
    counts.index = counts.index.map(str)
    counts = counts.groupby(level=0, sort=False).sum()  # 1 and "1" are one category
    return counts.sort_values(ascending=False, kind="stable")


def profile_frame(
    frame: pd.DataFrame,
    features: FeatureLists | None = None,
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    bins: int = 10,
    sample_size: int = 2000,
    top_k: int = 50,
) -> dict[str, Any]:
    """Profile the feature columns of ``frame`` (no score/prediction sections).

    Raises:
        DataError: a named column is missing, or ``bins``/``sample_size``/``top_k`` < 1.
    """
    if bins < 2 or sample_size < 2 or top_k < 1:
        raise DataError(
            f"bins={bins}, sample_size={sample_size}, top_k={top_k}: need bins >= 2, "
            "sample_size >= 2 and top_k >= 1"
        )
    num, cat = resolve_columns(frame, features, numeric=numeric, categorical=categorical)
    columns: dict[str, Any] = {}
    for name in num:
        columns[name] = profile_numeric(frame[name], bins=bins, sample_size=sample_size)
    for name in cat:
        columns[name] = profile_categorical(frame[name], top_k=top_k)
    return {
        "format": PROFILE_FORMAT,
        "rows": int(len(frame)),
        "numeric": num,
        "categorical": cat,
        "columns": columns,
        "score": None,
        "prediction": None,
    }


def build_reference(
    X: pd.DataFrame,
    features: FeatureLists | None = None,
    scores: ArrayLike | None = None,
    predictions: ArrayLike | None = None,
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    bins: int = 10,
    sample_size: int = 2000,
    top_k: int = 50,
) -> dict[str, Any]:
    """Build the JSON-serialisable reference profile of the training data.

    Args:
        X: the training features (not modified).
        features: an object with ``numeric`` and ``categorical`` lists (e.g. a FeatureSpec);
            ``numeric=``/``categorical=`` override it; with neither, inferred from dtypes.
        scores: the model's scores on ``X``: positive-class probability or regression output
            (1-D). A 2-D probability matrix is reduced as in :func:`score_vector`.
        predictions: the predicted labels on ``X``, profiled like a categorical column.
        bins: quantile bins per numeric column (before deduplication).
        sample_size: at most this many sorted reference values kept for KS/Wasserstein.
        top_k: categories kept per categorical column; the rest pool into ``"__other__"``.

    Returns:
        The profile dict (see the module docstring); ``orjson.dumps`` takes it as is.

    Raises:
        DataError: unknown columns, or scores/predictions whose length differs from ``X``.

    Example:
        >>> import pandas as pd
        >>> X = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0], "city": ["a", "b", "a", "a"]})
        >>> ref = build_reference(X, numeric=["age"], categorical=["city"], bins=2)
        >>> ref["columns"]["age"]["edges"], ref["columns"]["city"]["categories"]
        ([30.0], ['a', 'b'])
    """
    profile = profile_frame(X, features, numeric=numeric, categorical=categorical, bins=bins,
                            sample_size=sample_size, top_k=top_k)
    if scores is not None:
        vec = score_vector(scores)
        _check_length("scores", vec.shape[0], len(X))
        profile["score"] = profile_numeric(vec, bins=bins, sample_size=sample_size)
    if predictions is not None:
        labels = pd.Series(np.asarray(predictions).ravel())
        _check_length("predictions", labels.size, len(X))
        profile["prediction"] = profile_categorical(labels, top_k=top_k)
    return profile


def score_vector(scores: ArrayLike) -> NDArray[np.float64]:
    """One score per row: 1-D as is; a 2-class probability matrix → column 1 (positive
    class); a multi-class matrix → the top-class probability (the model's confidence)."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim == 2:
        return arr[:, 1] if arr.shape[1] == 2 else arr.max(axis=1)
    return arr.ravel()


def _check_length(what: str, got: int, expected: int) -> None:
    if got != expected:
        raise DataError(
            f"{what} has {got} rows but the features have {expected}; pass one {what[:-1]} "
            "per row of the frame"
        )
