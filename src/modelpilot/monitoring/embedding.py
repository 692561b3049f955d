"""Drift of embeddings: a group of columns (or one list-valued column) read as vectors.

Per-dimension tests on a 384-dimensional sentence embedding flag noise or miss a topic
change spread thinly over every dimension. Four detectors look at the vectors, each
against a profile made once from the reference (:func:`fit_embedding_profile`: a
subsample of vectors and the PCA basis), so scoring never rereads training data:

- **MMD** (maximum mean discrepancy, RBF kernel): the unbiased MMD² between a bounded
  subsample of each side (``sample_size`` rows per side), the kernel width set by the
  median heuristic (median pairwise squared distance of the pooled sample); the p-value is
  a permutation test (``permutations`` relabellings, all computed from one kernel matrix
  with one matrix product). A test: drifted when p < alpha. Because the subsample is
  bounded its power is too, so the smallest shift it reports does not shrink without end
  as windows grow.
- **Domain classifier**: :class:`~modelpilot.monitoring.multivariate.DomainClassifierDrift`
  with a logistic regression (cross-validated ROC AUC, permutation p-value on the
  out-of-fold scores; drifted when AUC ≥ 0.55 and p < alpha).
- **PCA components**: both sides projected on the reference's principal components (80%
  of the variance, at most 64 components); a component drifts when its mean moved by at
  least ``effect`` (0.1) reference standard deviations and a two-sample z-test on the means,
  Benjamini–Hochberg adjusted over the components, has p < alpha. The statistic is the
  share of drifted components; the embedding drifted when any component did (the
  adjustment keeps the false discoveries at alpha); the report adds the distance of the
  means in reference standard deviations (root mean square over the components). It
  cannot see a change that leaves the subspace (a new topic mostly does), so
- **PCA reconstruction error** (:class:`~modelpilot.monitoring.multivariate.PCAReconstructionDrift`)
  runs on the same basis: the window's mean distance from the reference's components.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.errors import DataError
from modelpilot.monitoring.drift.base import DriftResult
from modelpilot.monitoring.multivariate import (
    DomainClassifierDrift,
    PCAReconstructionDrift,
    matrix_profile,
    subsamples,
)

EMBEDDING_FORMAT = "modelpilot.embedding/1"
Matrix = NDArray[np.float64]


def embedding_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> Matrix:
    """The vectors of ``frame``: one list-valued column stacked, or numeric columns side by side.

    Raises:
        DataError: a column is missing, vectors of different lengths, or non-finite values.
    """
    missing = [c for c in columns if c not in frame.columns]
    if not columns or missing:
        raise DataError(f"embedding columns {missing or list(columns)} are not in the data")
    if len(columns) == 1 and len(frame) and not pd.api.types.is_numeric_dtype(frame[columns[0]].dtype):
        values = frame[columns[0]].to_list()
        lengths = {len(v) for v in values}
        if len(lengths) != 1:
            raise DataError(f"embedding column {columns[0]!r} holds vectors of lengths {sorted(lengths)[:5]}; "
                            "every row needs a vector of the same length")
        out = np.asarray(values, dtype=np.float64)
    else:
        out = frame[list(columns)].to_numpy(dtype=np.float64)
    if not np.isfinite(out).all():
        raise DataError(f"embedding {list(columns)} holds missing or infinite values; embed every row")
    return out


def fit_embedding_profile(
    vectors: Matrix, *, sample_size: int = 2000, variance: float = 0.8, max_components: int = 64, seed: int = 0
) -> dict[str, Any]:
    """Profile reference vectors (n × d): a subsample and the PCA basis (JSON-serialisable).

    Raises:
        DataError: fewer than 10 vectors.
    """
    X = np.asarray(vectors, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 10:
        raise DataError(f"an embedding profile needs at least 10 vectors (n × d), got shape {X.shape}")
    profile = matrix_profile(X, sample_size=sample_size, variance=variance, seed=seed, max_components=max_components)
    return {"format": EMBEDDING_FORMAT, "rows": int(X.shape[0]), "dim": int(X.shape[1]), **profile}


class MMDDrift:
    """Kernel two-sample test on a bounded subsample (see the module docstring)."""

    name = "mmd"

    def __init__(self, *, sample_size: int = 1000, permutations: int = 200, alpha: float = 0.05, seed: int = 0) -> None:
        self.sample_size = sample_size
        self.permutations = permutations
        self.alpha = alpha
        self.seed = seed

    def score_matrix(self, profile: dict[str, Any], current: Matrix) -> DriftResult:
        rng = np.random.default_rng(self.seed)
        X, Y = subsamples(profile, current, self.sample_size, rng, np.float32)
        if len(X) < 2 or len(Y) < 2:
            raise DataError("MMD needs at least 2 vectors on each side")
        with threadpool_limits(1):  # see DomainClassifierDrift: BLAS threads on a busy machine
            mmd2, p = mmd_test(X, Y, self.permutations, rng)
        return DriftResult(mmd2, p, bool(p < self.alpha), self.name, self.alpha)


def mmd_test(X: NDArray[np.float32], Y: NDArray[np.float32], permutations: int,
             rng: np.random.Generator) -> tuple[float, float]:
    """Unbiased MMD² with an RBF kernel (median heuristic) and its permutation p-value."""
    Z = np.vstack([X, Y])
    sq = np.einsum("ij,ij->i", Z, Z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (Z @ Z.T), 0.0)
    corner = d2[: min(len(Z), 1000), : min(len(Z), 1000)]
    median = float(np.median(corner[np.triu_indices_from(corner, k=1)]))
    K = np.exp(-d2 / (2.0 * median if median > 0 else 1.0))
    m, n = len(X), len(Y)
    # column 0: the real split; the others: random relabellings with the same sizes
    first = np.zeros((len(Z), 1 + permutations), dtype=np.float32)
    first[:m, 0] = 1.0
    for b in range(1, permutations + 1):
        first[rng.permutation(len(Z))[:m], b] = 1.0
    KA = K @ first
    total = K.sum(axis=1, dtype=np.float64)[:, None]
    sxx = (first * KA).sum(axis=0, dtype=np.float64) - m  # the diagonal k(x, x) = 1 left out
    sxy = (first * (total - KA)).sum(axis=0, dtype=np.float64)
    syy = float(total.sum()) - sxx - m - 2 * sxy - n
    mmd2 = sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)
    return float(mmd2[0]), float((1 + np.sum(mmd2[1:] >= mmd2[0])) / (1 + permutations))


class PCAComponentDrift:
    """Mean shift per principal component (see the module docstring)."""

    name = "pca_components"

    def __init__(self, *, effect: float = 0.1, alpha: float = 0.05) -> None:
        self.effect = effect
        self.alpha = alpha

    def components(self, profile: dict[str, Any], current: Matrix) -> tuple[Matrix, Matrix]:
        """Per component: the mean shift in reference standard deviations and its BH-adjusted p."""
        pca = profile["pca"]
        comp = np.asarray(pca["components"], dtype=np.float64)
        sd = np.asarray(pca["component_std"], dtype=np.float64)
        with threadpool_limits(1):
            projected = (np.asarray(current, dtype=np.float64) - np.asarray(pca["mean"])) @ comp.T
        shift = (projected.mean(axis=0) - np.asarray(pca["projected_mean"])) / np.where(sd > 0, sd, 1.0)
        # both means are estimates: the reference's from pca["n"] rows, the window's from its own
        z = shift / np.sqrt(1.0 / len(projected) + 1.0 / max(int(pca.get("n", 0)), 1))
        p = stats.false_discovery_control(2 * stats.norm.sf(np.abs(z)), method="bh")
        return shift, p

    def score_matrix(self, profile: dict[str, Any], current: Matrix) -> DriftResult:
        shift, p = self.components(profile, current)
        drifted = (np.abs(shift) >= self.effect) & (p < self.alpha)
        share = float(drifted.mean()) if drifted.size else 0.0
        return DriftResult(share, float(p.min()) if p.size else None, bool(drifted.any()), self.name, self.effect)


def embedding_drift(profile: dict[str, Any], current: Matrix, *, seed: int = 0) -> dict[str, Any]:
    """All four detectors on one embedding: a JSON dict with one entry per detector
    (statistic, p_value, drifted, method, threshold), ``mean_distance`` (RMS mean shift over
    the PCA components, in reference standard deviations) and ``drifted`` (any detector).

    Raises:
        DataError: vectors of another dimension than the reference's, or too few rows.
    """
    X = np.asarray(current, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != profile["dim"]:
        raise DataError(f"the reference embedding has {profile['dim']} dimensions, the window's {X.shape[1:]}")
    results = {
        "mmd": MMDDrift(seed=seed).score_matrix(profile, X),
        "domain_classifier": DomainClassifierDrift(model="linear", seed=seed).score_matrix(profile, X),
        "pca_components": PCAComponentDrift().score_matrix(profile, X),
        # a new topic lives mostly outside the reference's components, where the component
        # means cannot move: the distance from the subspace sees it
        "pca_reconstruction": PCAReconstructionDrift().score_matrix(profile, X),
    }
    shift, _ = PCAComponentDrift().components(profile, X)
    out: dict[str, Any] = {k: {**r.to_dict(), "statistic": float(r.statistic)} for k, r in results.items()}
    out["mean_distance"] = float(np.sqrt(np.mean(shift**2))) if shift.size else 0.0
    out["drifted"] = any(r.drifted for r in results.values())
    out["n_current"] = int(X.shape[0])
    return out
