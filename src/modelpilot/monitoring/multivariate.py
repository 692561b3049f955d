"""Drift of the joint distribution: what per-column tests cannot see.

Two correlated columns can swap their relation (a rotation) while each keeps its histogram;
every per-column method then reports nothing. Two detectors look at all columns at once:

- **PCA reconstruction error** (as NannyML does): the reference, standardised, is summarised
  by the principal components that explain ``variance`` (default 65%) of it; a row's error
  is its distance from that subspace. Rows that break the reference's correlations land far
  from it. The window's mean error is compared with the reference's per-row error
  distribution: drifted when it rose by at least ``effect`` (relative, default 10%) and a
  one-sided z-test on the mean (σ/√n, so the bar tightens with the window) has p < alpha.
- **Domain classifier**: a classifier learns to tell reference rows (a stored subsample)
  from current rows; its cross-validated ROC AUC is 0.5 when nothing changed. Its
  out-of-fold scores come from models that never saw the row, so under "no drift" they are
  exchangeable with respect to the labels: the p-value is a permutation test on them
  (labels shuffled ``permutations`` times, no refit). Drifted when AUC ≥ ``effect`` (default
  0.55) and p < alpha. A gradient-boosted tree model for tabular data (it sees
  interactions), a logistic regression for embeddings (dense, linear-separable directions).

Both score against a profile made once from the reference (:func:`fit_joint_profile`), so
scoring never rereads the training data. The profile holds the encoding (means/stds of
numeric columns, top categories of categorical ones, one-hot), a subsample of encoded rows
(``sample_size``), and the PCA basis with the reference's error mean and std.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.errors import DataError
from modelpilot.monitoring.drift.base import DriftResult
from modelpilot.monitoring.reference import category_counts

JOINT_FORMAT = "modelpilot.joint/1"
Matrix = NDArray[np.float64]
_TOP_K = 20


def fit_joint_profile(
    frame: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    sample_size: int = 2000,
    variance: float = 0.65,
    seed: int = 0,
) -> dict[str, Any]:
    """Profile ``frame``'s joint distribution for the two detectors (JSON-serialisable).

    Args:
        frame: the reference rows (not modified).
        numeric, categorical: the columns (categoricals are one-hot over their top 20 values).
        sample_size: reference rows kept (encoded) for the domain classifier.
        variance: share of the standardised variance the PCA components keep.
        seed: the subsample's random state.

    Raises:
        DataError: no columns, a column missing from ``frame``, or fewer than 10 rows.
    """
    columns = [*numeric, *categorical]
    missing = [c for c in columns if c not in frame.columns]
    if not columns or missing:
        raise DataError(f"joint drift needs feature columns present in the data; missing {missing or 'all'}")
    if len(frame) < 10:
        raise DataError(f"joint drift needs at least 10 reference rows, got {len(frame)}")
    raw = {c: _numbers(frame[c]) for c in numeric}
    encoding = {
        "numeric": list(numeric),
        "mean": [float(np.nanmean(v)) if np.isfinite(v).any() else 0.0 for v in raw.values()],
        "std": [float(np.nanstd(v)) or 1.0 if np.isfinite(v).any() else 1.0 for v in raw.values()],
        "categorical": list(categorical),
        "categories": [list(category_counts(frame[c]).index[:_TOP_K]) for c in categorical],
    }
    X = encode(encoding, frame)
    return {"format": JOINT_FORMAT, "rows": int(len(frame)), "encoding": encoding,
            **matrix_profile(X, sample_size=sample_size, variance=variance, seed=seed)}


def matrix_profile(
    X: Matrix, *, sample_size: int, variance: float, seed: int, max_components: int | None = None
) -> dict[str, Any]:
    """The subsample and the PCA basis (with the reference's reconstruction errors) of an
    encoded reference matrix; shared with the embedding profile."""
    rng = np.random.default_rng(seed)
    keep = rng.choice(X.shape[0], min(sample_size, X.shape[0]), replace=False)
    pca = PCA(n_components=variance if 0 < variance < 1 else None, svd_solver="full", random_state=seed)
    # the basis is fitted on at most half the rows (10,000 pin the leading components down)
    # and the reference error measured on the others: in-sample errors are too small, most
    # of all on few rows in many dimensions, and live rows would all look drifted
    order = rng.permutation(X.shape[0])
    n_fit = min(10_000, X.shape[0] // 2)
    with threadpool_limits(1):  # one BLAS thread (see DomainClassifierDrift)
        pca.fit(X[order[:n_fit]])
        k = pca.components_.shape[0] if max_components is None else min(max_components, pca.components_.shape[0])
        basis = {"mean": pca.mean_.tolist(), "components": pca.components_[:k].tolist(),
                 "component_std": np.sqrt(pca.explained_variance_[:k]).tolist()}
        errors = reconstruction_errors(basis, X[order[n_fit : n_fit + 50_000]])
        projected = (X - pca.mean_) @ pca.components_[:k].T
    return {"sample": X[np.sort(keep)].tolist(), "pca": {
        **basis, "error_mean": float(errors.mean()), "error_std": float(errors.std()),
        "projected_mean": projected.mean(axis=0).tolist(), "n": int(X.shape[0])}}


def encode(encoding: dict[str, Any], frame: pd.DataFrame) -> Matrix:
    """Standardised numeric columns (missing → the reference mean) and one-hot categoricals.

    Raises:
        DataError: a column of the encoding is not in ``frame``.
    """
    missing = [c for c in [*encoding["numeric"], *encoding["categorical"]] if c not in frame.columns]
    if missing:
        raise DataError(f"columns {missing} are not in the data; the joint profile was made with them")
    parts = []
    for c, mu, sd in zip(encoding["numeric"], encoding["mean"], encoding["std"], strict=True):
        z = (_numbers(frame[c]) - mu) / sd
        parts.append(np.where(np.isfinite(z), z, 0.0)[:, None])
    for c, cats in zip(encoding["categorical"], encoding["categories"], strict=True):
        codes = pd.Index(cats).get_indexer(frame[c].astype(str))
        parts.append((codes[:, None] == np.arange(len(cats))[None, :]).astype(np.float64))
    return np.hstack(parts) if parts else np.empty((len(frame), 0))


def reconstruction_errors(basis: dict[str, Any], X: Matrix) -> Matrix:
    """Each row's Euclidean distance from the PCA subspace."""
    mean = np.asarray(basis["mean"], dtype=np.float64)
    comp = np.asarray(basis["components"], dtype=np.float64)
    centred = X - mean
    out: Matrix = np.linalg.norm(centred - (centred @ comp.T) @ comp, axis=1)
    return out


class PCAReconstructionDrift:
    """Joint drift from the PCA reconstruction error (see the module docstring)."""

    name = "pca_reconstruction"

    def __init__(self, *, effect: float = 0.1, alpha: float = 0.05) -> None:
        self.effect = effect
        self.alpha = alpha

    def score_matrix(self, profile: dict[str, Any], X: Matrix) -> DriftResult:
        pca = profile["pca"]
        errors = reconstruction_errors(pca, X)
        mu, sd = float(pca["error_mean"]), float(pca["error_std"])
        rise = (float(errors.mean()) - mu) / mu if mu > 0 else 0.0
        z = (float(errors.mean()) - mu) / (sd / np.sqrt(len(errors))) if sd > 0 and len(errors) else 0.0
        p = float(stats.norm.sf(z))
        return DriftResult(rise, p, bool(rise >= self.effect and p < self.alpha), self.name, self.effect)

    def score(self, profile: dict[str, Any], current: pd.DataFrame) -> DriftResult:
        """Score ``current`` (not modified) against a :func:`fit_joint_profile` profile."""
        return self.score_matrix(profile, encode(profile["encoding"], current))


class DomainClassifierDrift:
    """Joint drift from a reference-vs-current classifier (see the module docstring)."""

    name = "domain_classifier"

    def __init__(self, *, effect: float = 0.55, alpha: float = 0.05, folds: int = 5,
                 permutations: int = 200, max_rows: int = 2000, model: str = "trees", seed: int = 0) -> None:
        self.effect = effect
        self.alpha = alpha
        self.folds = folds
        self.permutations = permutations
        self.max_rows = max_rows
        self.model = model
        self.seed = seed

    def score_matrix(self, profile: dict[str, Any], X: Matrix) -> DriftResult:
        rng = np.random.default_rng(self.seed)
        ref, cur = subsamples(profile, X, self.max_rows, rng)
        if len(cur) < 2 * self.folds or len(ref) < 2 * self.folds:
            raise DataError(f"the domain classifier needs at least {2 * self.folds} rows on each side")
        data = np.vstack([ref, cur])
        labels = np.r_[np.zeros(len(ref)), np.ones(len(cur))].astype(int)
        clf = (HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, early_stopping=False, random_state=self.seed)
               if self.model == "trees" else LogisticRegression(C=1.0, max_iter=500))
        cv = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        # one OpenMP thread: on a busy machine the boosting's thread team waits on itself
        # (30x slower measured on 2 shared cores), and the fits are small
        with threadpool_limits(1):
            scores = cross_val_predict(clf, data, labels, cv=cv, method="predict_proba")[:, 1]
        auc, p = permutation_auc(scores, labels, self.permutations, rng)
        return DriftResult(auc, p, bool(auc >= self.effect and p < self.alpha), self.name, self.effect)

    def score(self, profile: dict[str, Any], current: pd.DataFrame) -> DriftResult:
        """Score ``current`` (not modified) against a :func:`fit_joint_profile` profile."""
        return self.score_matrix(profile, encode(profile["encoding"], current))


def subsamples(
    profile: dict[str, Any], X: NDArray[Any], size: int, rng: np.random.Generator, dtype: Any = np.float64
) -> tuple[NDArray[Any], NDArray[Any]]:
    """At most ``size`` rows of the profile's stored sample and of ``X``, drawn without replacement."""
    ref = np.asarray(profile["sample"], dtype=dtype)
    cur = np.asarray(X, dtype=dtype)
    return (ref[rng.choice(len(ref), min(len(ref), size), replace=False)],
            cur[rng.choice(len(cur), min(len(cur), size), replace=False)])


def permutation_auc(
    scores: Matrix, labels: NDArray[np.int_], permutations: int, rng: np.random.Generator
) -> tuple[float, float]:
    """ROC AUC of ``scores`` for ``labels`` and its one-sided permutation p-value
    ((1 + #{null ≥ observed}) / (1 + permutations)), all permutations in one rank pass."""
    ranks = stats.rankdata(scores)
    n1 = int(labels.sum())
    n0 = labels.size - n1

    def auc(sum_ranks: Matrix | float) -> Any:
        return (sum_ranks - n1 * (n1 + 1) / 2) / (n0 * n1)

    observed = float(auc(ranks[labels == 1].sum()))
    null_labels = np.argsort(rng.random((permutations, labels.size)), axis=1) < n1
    null = auc((null_labels * ranks).sum(axis=1))
    return observed, float((1 + np.sum(null >= observed)) / (1 + permutations))


def _numbers(series: pd.Series) -> Matrix:
    out: Matrix = pd.to_numeric(series, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    return out
