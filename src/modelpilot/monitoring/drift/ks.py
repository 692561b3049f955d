"""Two-sample Kolmogorov–Smirnov test against the reference profile."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from modelpilot.monitoring.drift.base import (
    BaseDriftMethod,
    DriftResult,
    Profile,
    current_numeric,
    grid_cdfs,
    ks_statistic,
    nonmissing_count,
)
from modelpilot.monitoring.drift.chi2 import Chi2


def ks_p_value(d: float, n_ref: int, n_cur: int) -> float:
    """Asymptotic two-sample KS p-value (as ``scipy.stats.ks_2samp(method="asymp")``).

    Beyond an effective size of 10,000 the limiting Kolmogorov distribution is used: it is
    indistinguishable there and ~100x cheaper than ``kstwo`` at a million rows.
    """
    from scipy import stats

    if n_ref == 0 or n_cur == 0:
        return 1.0
    en = n_ref * n_cur / (n_ref + n_cur)
    p = stats.kstwo.sf(d, max(1, round(en))) if en <= 10_000 else stats.kstwobign.sf(
        d * np.sqrt(en))
    return float(np.clip(p, 0.0, 1.0))


class KS(BaseDriftMethod):
    """KS test of numeric columns; categorical columns are delegated to :class:`Chi2`.

    The statistic is the largest gap between the reference ECDF (stored exactly at up to
    ~2000 reference points) and the current ECDF, evaluated at those points: an
    approximation of the exact KS statistic within about 1/2000. The p-value uses the full
    reference and current non-missing counts. Missing values are ignored. Drifted when
    p < threshold; on large windows almost any difference is significant, prefer ``auto``.

    Args:
        threshold: significance level alpha (default 0.05).
        bins: quantile bins per numeric column used by ``fit``.
    """

    name: ClassVar[str] = "ks"
    default_threshold: ClassVar[float] = 0.05

    def _score_numeric(
        self, specs: Profile, current: pd.DataFrame, names: list[str]
    ) -> dict[str, DriftResult]:
        t = self.threshold_
        out = {}
        for name in names:
            xs, _ = current_numeric(current, name)
            _, ref_cdf, cur_cdf = grid_cdfs(specs[name], xs)
            d = ks_statistic(ref_cdf, cur_cdf)
            p = ks_p_value(d, nonmissing_count(specs[name]), xs.size)
            out[name] = DriftResult(d, p, p < t, self.name, t)
        return out

    def _score_categorical(
        self, specs: Profile, current: pd.DataFrame, names: list[str]
    ) -> dict[str, DriftResult]:
        return Chi2(threshold=self.threshold)._score_categorical(specs, current, names)
