"""Wasserstein-1 distance normalised by the reference standard deviation."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from modelpilot.monitoring.drift.base import (
    BaseDriftMethod,
    DriftResult,
    Profile,
    current_numeric,
    grid_cdfs,
    reference_scale,
    wasserstein_distance,
)
from modelpilot.monitoring.drift.jensenshannon import JensenShannon


class Wasserstein(BaseDriftMethod):
    """Earth mover's distance W1 / reference std for numeric columns; categorical columns
    are delegated to :class:`JensenShannon`.

    Normalised W1 reads as "the distribution moved by this many reference standard
    deviations" (a pure mean shift of 0.25 std scores 0.25), independent of units and of the
    sample size. Computed against the profile's ≤2000 stored reference points plus the
    exact tails beyond the reference min/max (approximate, see docs/monitoring.md).
    Constant reference columns are normalised by |mean| (or 1). Missing values are ignored.

    Args:
        threshold: drifted when W1/std >= threshold (default 0.1); for the delegated
            categorical columns it is the JS-distance threshold.
        bins: quantile bins per numeric column used by ``fit``.
    """

    name: ClassVar[str] = "wasserstein"
    default_threshold: ClassVar[float] = 0.1

    def _score_numeric(
        self, specs: Profile, current: pd.DataFrame, names: list[str]
    ) -> dict[str, DriftResult]:
        t = self.threshold_
        out = {}
        for name in names:
            xs, _ = current_numeric(current, name)
            grid, ref_cdf, cur_cdf = grid_cdfs(specs[name], xs)
            w = wasserstein_distance(specs[name], xs, grid, ref_cdf, cur_cdf)
            w /= reference_scale(specs[name])
            out[name] = DriftResult(w, None, w >= t, self.name, t)
        return out

    def _score_categorical(
        self, specs: Profile, current: pd.DataFrame, names: list[str]
    ) -> dict[str, DriftResult]:
        return JensenShannon(threshold=self.threshold)._score_categorical(specs, current, names)
