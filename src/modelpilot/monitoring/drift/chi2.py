"""Chi-square test of homogeneity: reference vs current bucket counts."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from modelpilot.monitoring.drift.base import (
    BaseDriftMethod,
    DriftResult,
    Profile,
    categorical_buckets,
    chi2_two_sample,
    current_numeric,
    numeric_buckets,
)


class Chi2(BaseDriftMethod):
    """Two-sample chi-square test over categories (top-k + ``__other__`` + ``__missing__``);
    numeric columns are tested over the reference quantile bins plus a missing bucket.

    ``statistic`` is the chi-square statistic, ``threshold`` the significance level: drifted
    when p < threshold. No correction for testing many columns (``auto`` applies one). On
    large samples any real difference, however small, is significant — prefer ``auto`` or an
    effect size (psi, jensenshannon) on big windows.

    Args:
        threshold: significance level alpha (default 0.05).
        bins: quantile bins per numeric column used by ``fit``.
    """

    name: ClassVar[str] = "chi2"
    default_threshold: ClassVar[float] = 0.05

    def _result(self, stat: float, p: float) -> DriftResult:
        t = self.threshold_
        return DriftResult(stat, p, p < t, self.name, t)

    def _score_numeric(
        self, specs: Profile, current: pd.DataFrame, names: list[str]
    ) -> dict[str, DriftResult]:
        out = {}
        for name in names:
            xs, rows = current_numeric(current, name)
            ref, cur = numeric_buckets(specs[name], xs, rows)
            out[name] = self._result(*chi2_two_sample(ref, specs[name]["count"], cur, rows))
        return out

    def _score_categorical(
        self, specs: Profile, current: pd.DataFrame, names: list[str]
    ) -> dict[str, DriftResult]:
        out = {}
        for name in names:
            ref, cur = categorical_buckets(specs[name], current[name])
            stat, p = chi2_two_sample(ref, specs[name]["count"], cur, len(current))
            out[name] = self._result(stat, p)
        return out
