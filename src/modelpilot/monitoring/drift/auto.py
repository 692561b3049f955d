"""``auto``: decide on an effect size, with a significance test as a guard.

Why not a plain test: on the windows monitoring sees (thousands to millions of rows) a
p-value flags differences far too small to matter, and scanning 25 columns at alpha 0.05
flags one column by chance every other time. Why not a plain effect size: on a small window
sampling noise alone moves an effect size past any useful threshold. So a column drifts
only when BOTH hold:

- the effect is at least a threshold that means "a real, visible change":
  numeric — Wasserstein-1 / reference std >= 0.1 (the distribution moved by a tenth of a
  standard deviation; a 0.25-std mean shift scores 0.25); categorical — Jensen–Shannon
  distance (base 2) >= 0.07 (any 10-point move of share between two categories scores
  >= 0.085, a 5-point move ~0.05);
- the change is statistically real: the p-value of a KS test (numeric) or chi-square test
  (categorical), adjusted for the number of columns scored together with
  Benjamini–Hochberg, is below alpha = 0.05.

At large samples the effect size decides (the guard passes for any real effect); at small
samples the guard decides (noise can push the effect past the threshold but not the p-value
below alpha). The rule is monotone in the sample size, unlike switching tests at a fixed
row count (Evidently switches from KS to Wasserstein at 1000 rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelpilot.monitoring.drift.base import (
    BaseDriftMethod,
    DriftResult,
    Profile,
    categorical_buckets,
    chi2_two_sample,
    current_numeric,
    grid_cdfs,
    js_distance,
    ks_statistic,
    nonmissing_count,
    reference_scale,
    select_columns,
    wasserstein_distance,
)
from modelpilot.monitoring.drift.ks import ks_p_value


class AutoDrift(BaseDriftMethod):
    """Effect size AND adjusted p-value, per column type (see the module docstring).

    Args:
        threshold: overrides both effect thresholds when given.
        numeric_threshold: W1 / reference std for numeric columns (default 0.1).
        categorical_threshold: JS distance (base 2) for categorical columns (default 0.07).
        alpha: significance level of the guard after the column correction (default 0.05).
        correction: "bh" (Benjamini–Hochberg), "bonferroni" or "none".
        bins: quantile bins per numeric column used by ``fit``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(size=5000)})
        >>> auto = AutoDrift()
        >>> profile = auto.fit(ref)
        >>> auto.score(profile, pd.DataFrame({"x": rng.normal(0.5, 1, 5000)}))["x"].drifted
        True
    """

    name: ClassVar[str] = "auto"

    def __init__(
        self,
        *,
        threshold: float | None = None,
        numeric_threshold: float = 0.1,
        categorical_threshold: float = 0.07,
        alpha: float = 0.05,
        correction: str = "bh",
        bins: int = 10,
    ) -> None:
        super().__init__(threshold=threshold, bins=bins)
        self.numeric_threshold = numeric_threshold
        self.categorical_threshold = categorical_threshold
        self.alpha = alpha
        self.correction = correction

    def score(
        self, profile: Profile, current: pd.DataFrame, *, columns: Sequence[str] | None = None
    ) -> dict[str, DriftResult]:
        """Score the columns, correcting the guard's p-values over all of them at once."""
        from modelpilot.errors import DataError

        if self.correction not in ("bh", "bonferroni", "none"):
            raise DataError(
                f"correction={self.correction!r} is not known; use 'bh', 'bonferroni' or 'none'"
            )
        names = select_columns(profile, current, columns)
        raw: list[tuple[float, float, str, float]] = []  # effect, p, method, threshold
        for name in names:
            spec = profile["columns"][name]
            if spec["type"] == "numeric":
                raw.append(self._numeric(spec, current, name))
            else:
                raw.append(self._categorical(spec, current, name))
        p_adj = adjust_p_values(np.array([r[1] for r in raw]), self.correction)
        return {
            name: DriftResult(eff, float(p), bool(eff >= t and p < self.alpha), method, t)
            for name, (eff, _, method, t), p in zip(names, raw, p_adj, strict=True)
        }

    def _numeric(self, spec: Profile, current: pd.DataFrame, name: str
                 ) -> tuple[float, float, str, float]:
        xs, _ = current_numeric(current, name)
        grid, ref_cdf, cur_cdf = grid_cdfs(spec, xs)
        w = wasserstein_distance(spec, xs, grid, ref_cdf, cur_cdf) / reference_scale(spec)
        p = ks_p_value(ks_statistic(ref_cdf, cur_cdf), nonmissing_count(spec), xs.size)
        t = self.numeric_threshold if self.threshold is None else float(self.threshold)
        return w, p, "wasserstein+ks", t

    def _categorical(self, spec: Profile, current: pd.DataFrame, name: str
                     ) -> tuple[float, float, str, float]:
        ref, cur = categorical_buckets(spec, current[name])
        _, p = chi2_two_sample(ref, spec["count"], cur, len(current))
        t = self.categorical_threshold if self.threshold is None else float(self.threshold)
        return js_distance(ref, cur), p, "jensenshannon+chi2", t


def adjust_p_values(p: NDArray[np.float64], correction: str) -> NDArray[np.float64]:
    """Multiple-testing adjustment of p-values over columns (``bh``/``bonferroni``/``none``)."""
    if p.size == 0 or correction == "none":
        return p
    if correction == "bonferroni":
        capped: NDArray[np.float64] = np.minimum(p * p.size, 1.0)
        return capped
    from scipy import stats

    adjusted: NDArray[np.float64] = np.asarray(stats.false_discovery_control(p, method="bh"))
    return adjusted
