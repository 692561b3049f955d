"""The drift-method contract and the column arithmetic every method shares.

A drift method (DESIGN.md) is an object whose constructor takes keyword-only parameters and
only stores them; ``fit(reference)`` returns a JSON-serialisable profile (the same layout as
:func:`modelpilot.monitoring.build_reference`, so any method scores against the profile
stored at training time) and ``score(profile, current)`` returns one :class:`DriftResult`
per column. Methods are stateless after construction: thread-safe, and they never modify
the frames or profiles they are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelpilot.errors import DataError
from modelpilot.monitoring.reference import (
    FeatureLists,
    category_counts,
    finite_sorted,
    profile_frame,
)

Profile = dict[str, Any]
Array = NDArray[np.float64]
# proportions are floored here before logs/ratios (PSI), so an empty bin or an unseen
# category gives a large but finite contribution instead of infinity
EPS = 1e-4


@dataclass(frozen=True)
class DriftResult:
    """The verdict on one column.

    ``statistic`` is the quantity compared with ``threshold`` (or, for pure tests, the test
    statistic while ``threshold`` is the significance level); ``p_value`` is None for
    methods without a test; ``method`` names what actually decided (``auto`` reports e.g.
    ``"wasserstein+ks"``).
    """

    statistic: float
    p_value: float | None
    drifted: bool
    method: str
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class DriftMethod(Protocol):
    """What every entry of ``DRIFT_METHODS`` is."""

    name: ClassVar[str]

    def fit(
        self,
        reference: pd.DataFrame,
        *,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
    ) -> Profile: ...

    def score(
        self, profile: Profile, current: pd.DataFrame, *, columns: Sequence[str] | None = None
    ) -> dict[str, DriftResult]: ...


class BaseDriftMethod:
    """Shared ``fit`` and the column dispatch of ``score``; subclasses score by type."""

    name: ClassVar[str] = ""
    default_threshold: ClassVar[float] = 0.0

    def __init__(self, *, threshold: float | None = None, bins: int = 10) -> None:
        self.threshold = threshold
        self.bins = bins

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"

    @property
    def threshold_(self) -> float:
        return self.default_threshold if self.threshold is None else float(self.threshold)

    def fit(
        self,
        reference: pd.DataFrame,
        *,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
    ) -> Profile:
        """Profile ``reference`` (columns inferred from dtypes unless given)."""
        return profile_frame(reference, numeric=numeric, categorical=categorical, bins=self.bins)

    def score(
        self, profile: Profile, current: pd.DataFrame, *, columns: Sequence[str] | None = None
    ) -> dict[str, DriftResult]:
        """Score every profiled column (or ``columns``) of ``current`` against ``profile``.

        Raises:
            DataError: a column is not in the profile or not in ``current``.
        """
        names = select_columns(profile, current, columns)
        specs = profile["columns"]
        num = [c for c in names if specs[c]["type"] == "numeric"]
        cat = [c for c in names if specs[c]["type"] == "categorical"]
        results = {**self._score_numeric(specs, current, num),
                   **self._score_categorical(specs, current, cat)}
        return {c: results[c] for c in names}

    def _score_numeric(
        self, specs: Profile, current: pd.DataFrame, names: list[str]
    ) -> dict[str, DriftResult]:
        raise NotImplementedError

    def _score_categorical(
        self, specs: Profile, current: pd.DataFrame, names: list[str]
    ) -> dict[str, DriftResult]:
        raise NotImplementedError


def select_columns(
    profile: Profile, current: pd.DataFrame, columns: Sequence[str] | FeatureLists | None
) -> list[str]:
    """The columns to score: ``columns`` (names or a FeatureSpec-like) or all profiled ones."""
    if not isinstance(profile, dict) or "columns" not in profile:
        raise DataError(
            "the reference profile has no 'columns' section; build it with "
            "build_reference() or a drift method's fit()"
        )
    if columns is None:
        names = list(profile["columns"])
    elif hasattr(columns, "numeric") and hasattr(columns, "categorical"):
        names = [*columns.numeric, *columns.categorical]
    else:
        names = list(columns)
    unknown = [c for c in names if c not in profile["columns"]]
    if unknown:
        raise DataError(
            f"columns {unknown} are not in the reference profile (it has "
            f"{list(profile['columns'])}); rebuild the reference with them or drop them"
        )
    absent = [c for c in names if c not in current.columns]
    if absent:
        raise DataError(
            f"the current data lacks columns {absent} that the reference profile holds; "
            "log these features with the predictions or restrict the columns scored"
        )
    return names


# --------------------------------------------------------------------------- numeric


def numeric_buckets(spec: Profile, xs: Array, rows: int) -> tuple[Array, Array]:
    """Reference and current shares over the quantile bins plus a final missing bucket.

    ``xs`` are the current column's sorted finite values, ``rows`` its length.
    """
    ref_missing = spec["missing_fraction"]
    ref = np.append(np.asarray(spec["proportions"]) * (1.0 - ref_missing), ref_missing)
    edges = np.asarray(spec["edges"], dtype=np.float64)
    # bins are right-closed (e[i-1], e[i]]: count of values <= e is searchsorted 'right'
    counts = np.diff(np.searchsorted(xs, edges, side="right"), prepend=0, append=xs.size)
    cur = np.append(counts, rows - xs.size) / max(rows, 1)
    return ref, cur


def grid_cdfs(spec: Profile, xs: Array) -> tuple[Array, Array, Array]:
    """The reference sample points, the reference ECDF there, and the current ECDF there."""
    grid = np.asarray(spec["sample"], dtype=np.float64)
    cur = np.searchsorted(xs, grid, side="right") / max(xs.size, 1)
    return grid, np.asarray(spec["sample_cdf"], dtype=np.float64), cur


def ks_statistic(ref_cdf: Array, cur_cdf: Array) -> float:
    """Largest ECDF gap, evaluated at the reference sample points (approximate, see docs)."""
    return float(np.abs(ref_cdf - cur_cdf).max()) if ref_cdf.size else 0.0


def wasserstein_distance(spec: Profile, xs: Array, grid: Array, ref_cdf: Array,
                         cur_cdf: Array) -> float:
    """W1 = ∫|F_ref − F_cur| dx: step integral over the reference sample points plus the
    exact tails of the current data beyond the reference min and max."""
    if grid.size == 0 or xs.size == 0:
        return 0.0
    inner = float(np.sum(np.abs(ref_cdf[:-1] - cur_cdf[:-1]) * np.diff(grid)))
    lo, hi = grid[0], grid[-1]
    # below the reference minimum F_ref = 0, above its maximum F_ref = 1
    k_lo = np.searchsorted(xs, lo, side="left")
    k_hi = np.searchsorted(xs, hi, side="right")
    tails = (lo * k_lo - xs[:k_lo].sum()) + (xs[k_hi:].sum() - hi * (xs.size - k_hi))
    return inner + float(tails) / xs.size


def reference_scale(spec: Profile) -> float:
    """The reference std used to normalise Wasserstein (|mean| or 1 for constant columns)."""
    std = spec.get("std") or 0.0
    if std > 0:
        return float(std)
    mean = abs(spec.get("mean") or 0.0)
    return float(mean) if mean > 0 else 1.0


def nonmissing_count(spec: Profile) -> int:
    return int(spec["count"]) - int(spec["missing"])


# --------------------------------------------------------------------------- categorical


def categorical_buckets(spec: Profile, series: pd.Series) -> tuple[Array, Array]:
    """Reference and current shares over [categories..., "__other__", "__missing__"].

    Categories unseen in the reference fall into "__other__".
    """
    ref = np.asarray([*spec["proportions"], spec["other"], spec["missing_fraction"]])
    rows = int(series.size)
    counts = category_counts(series)
    idx = pd.Index(spec["categories"]).get_indexer(counts.index)
    k = len(spec["categories"])
    # unknown categories (-1) go to the "other" slot k
    found = np.bincount(np.where(idx < 0, k, idx), weights=counts.to_numpy(np.float64),
                        minlength=k + 1)
    cur: Array = np.append(found, rows - counts.sum()) / max(rows, 1)
    return ref.astype(np.float64), cur


def chi2_two_sample(ref: Array, n_ref: int, cur: Array, n_cur: int) -> tuple[float, float]:
    """Chi-square test of homogeneity on bucket shares → (statistic, p-value).

    Buckets empty on both sides are dropped (they carry no information and no degree of
    freedom).
    """
    from scipy import stats

    obs = np.vstack([ref * n_ref, cur * n_cur])
    obs = obs[:, obs.sum(axis=0) > 0]
    if obs.shape[1] < 2 or n_ref == 0 or n_cur == 0:
        return 0.0, 1.0
    expected = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / obs.sum()
    stat = float(((obs - expected) ** 2 / expected).sum())
    return stat, float(stats.chi2.sf(stat, obs.shape[1] - 1))


def js_distance(ref: Array, cur: Array) -> float:
    """Jensen–Shannon distance in base 2 (0 = identical, 1 = disjoint)."""
    from scipy.spatial.distance import jensenshannon

    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    return float(np.nan_to_num(jensenshannon(ref, cur, base=2)))


def psi(ref: Array, cur: Array) -> float:
    """Population stability index Σ (cur − ref)·ln(cur/ref) with shares floored at EPS."""
    r, c = np.maximum(ref, EPS), np.maximum(cur, EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def current_numeric(current: pd.DataFrame, name: str) -> tuple[Array, int]:
    """Sorted finite values of a current column and its row count (input untouched)."""
    return finite_sorted(current[name])


class BucketDistanceMethod(BaseDriftMethod):
    """An effect size between the reference's buckets and the current window's: quantile bins
    plus a missing bucket for numeric columns, top categories plus ``__other__`` and
    ``__missing__`` for categorical ones. No p-value: the statistic does not grow with n.
    Subclasses name the ``distance`` (a function of the two share vectors)."""

    distance: ClassVar[staticmethod[[Array, Array], float]]

    def _result(self, value: float) -> DriftResult:
        t = self.threshold_
        return DriftResult(value, None, value >= t, self.name, t)

    def _score_numeric(self, specs: Profile, current: pd.DataFrame, names: list[str]) -> dict[str, DriftResult]:
        out = {}
        for name in names:
            xs, rows = current_numeric(current, name)
            out[name] = self._result(type(self).distance(*numeric_buckets(specs[name], xs, rows)))
        return out

    def _score_categorical(self, specs: Profile, current: pd.DataFrame, names: list[str]) -> dict[str, DriftResult]:
        return {n: self._result(type(self).distance(*categorical_buckets(specs[n], current[n]))) for n in names}
