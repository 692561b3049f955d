"""Change detectors: a sequential test on a model's labelled error stream.

A drift method compares two samples of *inputs*; a change detector watches one stream of
per-row *losses* (1/0 for a wrong/right class, a bounded normalised squared error for
regression) in the order the labels arrived, and says whether — and where — its level rose.
It has the shape of a drift method (DESIGN.md): keyword-only parameters that are only
stored, ``fit(reference)`` on the model's own post-deployment losses, ``update(values)``
with the newer losses (vectorised over rows), then ``drift_detected`` and :meth:`report`.

:class:`WindowScan` (``"scan"``, the default) is an ADWIN-like test on NumPy/SciPy. At each
check it splits the stream into "the last L rows" and "everything before" for a geometric
grid of L (``min_rows``, 2·``min_rows``, 4·``min_rows``, …), scores every split with a
one-sided two-sample statistic (the signed root of the likelihood ratio for 0/1 losses, a
Welch z otherwise) and fires when the largest one exceeds the Bonferroni critical value of
``alpha`` over the grid: under a stationary stream a check fires with probability at most
``alpha``, whatever the stream's level (the level is not a parameter: the test is
two-sample). Only splits after the reference may fire. Once fired, the change is *located*
at the maximum-likelihood single split over every row (not only the grid), so retraining
can start at the first row of the new concept.

Example::

    >>> rng = np.random.default_rng(0)
    >>> before = (rng.random(4000) < 0.10).astype(float)
    >>> after = (rng.random(1000) < 0.16).astype(float)
    >>> det = WindowScan().fit(before).update(after)
    >>> det.drift_detected, 3900 <= det.report().change_at <= 4100
    (True, True)
    >>> WindowScan().fit(before[:2000]).update(before[2000:]).drift_detected
    False
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelpilot.errors import ConfigError, DataError

Array = NDArray[np.float64]


@dataclass(frozen=True)
class ChangeReport:
    """What a change detector found on the stream it was given.

    ``statistic`` is the largest split statistic of the check and ``threshold`` its critical
    value; ``p_value`` is that of the largest one, adjusted for the number of splits tried.
    ``change_at`` is the index (in reference + updates) of the first row of the new level,
    ``rows_after`` the rows from it to the end; ``level_before``/``level_after`` the mean
    loss on each side of it. All of them are None while nothing was detected, except the
    statistic, threshold and p-value, which are reported on every check.
    """

    method: str
    detected: bool
    statistic: float | None
    threshold: float
    p_value: float | None
    alpha: float
    n: int
    n_reference: int
    change_at: int | None = None
    rows_after: int | None = None
    level_before: float | None = None
    level_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class ChangeDetector(Protocol):
    """What every entry of ``CHANGE_DETECTORS`` is.

    ``fit`` starts over from a reference stream and returns the detector; ``update`` adds
    rows and returns it; neither keeps a reference to the arrays it is given nor changes them.
    A detector is not thread-safe (it accumulates a stream); make one per stream.
    """

    name: ClassVar[str]

    def fit(self, reference: ArrayLike) -> ChangeDetector: ...

    def update(self, values: ArrayLike) -> ChangeDetector: ...

    @property
    def drift_detected(self) -> bool: ...

    def report(self) -> ChangeReport: ...


def _losses(values: ArrayLike, what: str) -> Array:
    arr = np.array(values, dtype=np.float64, copy=True).ravel()
    if arr.size and not np.isfinite(arr).all():
        raise DataError(f"the {what} holds {int((~np.isfinite(arr)).sum())} missing or infinite losses: drop those rows first")
    return arr


class WindowScan:
    """The geometric-grid two-sample scan described in the module docstring.

    Args:
        alpha: probability that one check fires on a stationary stream (the false-alarm
            rate per check). The controller checks once per tick; consecutive checks share
            most of their rows, so the rate per tick over a long quiet stream stays near it.
        min_rows: rows on each side of a split (the shortest new level the test looks at).
        min_increase: the least rise of the mean loss that counts, on top of significance
            (0: significance alone decides).
    """

    name: ClassVar[str] = "scan"

    def __init__(self, *, alpha: float = 0.001, min_rows: int = 100, min_increase: float = 0.0) -> None:
        if not 0 < alpha < 1:
            raise ConfigError(f"change detector alpha must be in (0, 1), got {alpha!r}")
        if min_rows < 10:
            raise ConfigError(f"change detector min_rows must be at least 10, got {min_rows!r}")
        self.alpha, self.min_rows, self.min_increase = alpha, min_rows, min_increase
        self._values: Array = np.empty(0)
        self._n_reference = 0
        self._report: ChangeReport | None = None

    def __repr__(self) -> str:
        return f"WindowScan(alpha={self.alpha}, min_rows={self.min_rows}, min_increase={self.min_increase})"

    def fit(self, reference: ArrayLike) -> WindowScan:
        self._values = _losses(reference, "reference")
        self._n_reference = len(self._values)
        self._report = None
        return self

    def update(self, values: ArrayLike) -> WindowScan:
        self._values = np.concatenate([self._values, _losses(values, "update")])
        self._report = None
        return self

    @property
    def drift_detected(self) -> bool:
        return self.report().detected

    def grid(self, n: int) -> NDArray[np.int64]:
        """The split lengths "last L rows" checked on a stream of ``n`` rows."""
        top = n - self.min_rows
        lengths = self.min_rows * 2 ** np.arange(0, 40)
        return np.asarray(lengths[lengths <= top], dtype=np.int64)

    def report(self) -> ChangeReport:
        if self._report is None:
            self._report = self._check()
        return self._report

    def _check(self) -> ChangeReport:
        from scipy.stats import norm

        e, n, n_ref = self._values, len(self._values), self._n_reference
        # splits may not reach back into the reference: it is the level the stream is held to
        lengths = self.grid(n)
        lengths = lengths[lengths <= n - max(n_ref, self.min_rows)]
        m = max(len(lengths), 1)
        critical = float(norm.isf(self.alpha / m))
        base: dict[str, Any] = {"method": self.name, "threshold": critical, "alpha": self.alpha, "n": n, "n_reference": n_ref}
        if not len(lengths):
            return ChangeReport(detected=False, statistic=None, p_value=None, **base)
        csum = np.concatenate([[0.0], np.cumsum(e)])
        stats = _split_stats(e, csum, n - lengths)
        best = int(np.argmax(stats))
        top = float(stats[best])
        p_value = float(min(1.0, m * norm.sf(top)))
        if not top > critical:
            return ChangeReport(detected=False, statistic=top, p_value=p_value, **base)
        # locate: the maximum-likelihood split over every row after the reference
        ks = np.arange(max(n_ref, self.min_rows), n - self.min_rows + 1)
        all_stats = _split_stats(e, csum, ks)
        k = int(ks[int(np.argmax(all_stats))])
        before, after = csum[k] / k, (csum[n] - csum[k]) / (n - k)
        if after - before < self.min_increase:
            return ChangeReport(detected=False, statistic=top, p_value=p_value, **base)
        return ChangeReport(detected=True, statistic=top, p_value=p_value, change_at=k, rows_after=n - k,
                            level_before=float(before), level_after=float(after), **base)


def _split_stats(e: Array, csum: Array, ks: NDArray[np.int64]) -> Array:
    """One-sided statistic of "the mean after split k is higher than before it", per k.

    0/1 losses: the signed root of the two-binomial likelihood ratio (well calibrated in the
    tails even for rare errors, where a Wald z is not); other losses: a Welch z.
    """
    n = len(e)
    k = ks.astype(np.float64)
    s1, s2 = csum[ks], csum[n] - csum[ks]
    n1, n2 = k, n - k
    p1, p2 = s1 / n1, s2 / n2
    binary = bool(np.isin(e, (0.0, 1.0)).all())
    if binary:
        pooled = csum[n] / n
        ll = _bern(s1, n1, p1) + _bern(s2, n2, p2) - _bern(s1 + s2, n1 + n2, np.full_like(p1, pooled))
        root = np.sqrt(np.maximum(2.0 * ll, 0.0))
        return np.asarray(np.where(p2 > p1, root, -root))
    sq = np.concatenate([[0.0], np.cumsum(e * e)])
    q1, q2 = sq[ks], sq[n] - sq[ks]
    v1 = np.maximum(q1 / n1 - p1**2, 0.0) * n1 / np.maximum(n1 - 1, 1)
    v2 = np.maximum(q2 / n2 - p2**2, 0.0) * n2 / np.maximum(n2 - 1, 1)
    se = np.sqrt(np.maximum(v1 / n1 + v2 / n2, 1e-12))
    return np.asarray((p2 - p1) / se)


def _bern(s: Array, n: Array, p: Array) -> Array:
    """Bernoulli log-likelihood of s successes in n rows at rate p (0·log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(s > 0, s * np.log(np.where(p > 0, p, 1.0)), 0.0)
        b = np.where(n - s > 0, (n - s) * np.log(np.where(p < 1, 1 - p, 1.0)), 0.0)
    return np.asarray(a + b)


class RiverADWIN:
    """River's ADWIN over the same stream (``pip install river``), for comparison.

    ADWIN keeps a window that it cuts where two sub-windows' means differ by more than a
    Hoeffding-style bound at confidence ``alpha`` (River's ``delta``); after a detection the window holds only
    rows after the change, which locates it. It reacts to falls of the loss as well as rises.
    """

    name: ClassVar[str] = "adwin"

    def __init__(self, *, alpha: float = 0.002, min_rows: int = 10) -> None:
        self.alpha, self.min_rows = alpha, min_rows
        self._values: Array = np.empty(0)
        self._n_reference = 0
        self._report: ChangeReport | None = None

    def fit(self, reference: ArrayLike) -> RiverADWIN:
        self._values, self._report = _losses(reference, "reference"), None
        self._n_reference = len(self._values)
        return self

    def update(self, values: ArrayLike) -> RiverADWIN:
        self._values, self._report = np.concatenate([self._values, _losses(values, "update")]), None
        return self

    @property
    def drift_detected(self) -> bool:
        return self.report().detected

    def report(self) -> ChangeReport:
        if self._report is None:
            self._report = self._check()
        return self._report

    def _check(self) -> ChangeReport:
        try:
            from river.drift import ADWIN
        except ImportError:
            raise ConfigError("the 'adwin' change detector needs River: pip install river") from None
        e, n = self._values, len(self._values)
        det = ADWIN(delta=self.alpha, grace_period=self.min_rows)  # type: ignore[no-untyped-call]
        change_at = None
        for i, x in enumerate(e.tolist()):  # River's API is one row at a time
            det.update(x)  # type: ignore[no-untyped-call]
            if det.drift_detected and i >= self._n_reference and change_at is None:
                change_at = i + 1 - int(det.width)  # the first cut: the window kept is the new level
        base: dict[str, Any] = {"method": self.name, "threshold": self.alpha, "alpha": self.alpha, "n": n,
                "n_reference": self._n_reference, "statistic": None, "p_value": None}
        if change_at is None:
            return ChangeReport(detected=False, **base)
        before, after = float(e[:change_at].mean()) if change_at else None, float(e[change_at:].mean())
        if before is not None and after <= before:  # a fall of the loss is not a reason to act
            return ChangeReport(detected=False, **base)
        return ChangeReport(detected=True, change_at=change_at, rows_after=n - change_at,
                            level_before=before, level_after=after, **base)


CHANGE_DETECTORS: dict[str, type[WindowScan] | type[RiverADWIN]] = {c.name: c for c in (WindowScan, RiverADWIN)}


def get_change_detector(name: str, **params: Any) -> ChangeDetector:
    """A change detector by registry name, built with keyword ``params``.

    Raises:
        ConfigError: the name is not registered.
    """
    try:
        cls = CHANGE_DETECTORS[name]
    except KeyError:
        raise ConfigError(
            f"unknown change detector {name!r}; set triggers.change.method to one of {sorted(CHANGE_DETECTORS)}"
        ) from None
    return cls(**params)


# each registered detector satisfies the protocol (checked by mypy)
_scan: type[ChangeDetector] = WindowScan
_adwin: type[ChangeDetector] = RiverADWIN
