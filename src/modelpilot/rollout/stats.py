"""The A/B decision: fixed-horizon tests, sample sizes and an always-valid sequential test.

Every test reports the effect (challenger minus champion, in the metric's "better"
direction), its confidence interval and a p-value; :class:`TestResult` carries them.

* :func:`two_proportion_ztest` — per-row success rates (accuracy: a row is a success when
  the prediction equals the label), pooled-variance z statistic, unpooled Wald interval.
* :func:`welch_ttest` — per-row values with unequal variances (squared/absolute errors,
  business rewards), ``scipy.stats.ttest_ind(equal_var=False)``.
* :func:`sample_size_proportions` / :func:`sample_size_means` — rows per arm a two-sided
  test at ``alpha`` needs to detect the minimum detectable effect with ``power``.
* :func:`msprt` — the mixture sequential probability ratio test (Johari, Pekelis & Walsh,
  "Always valid inference", 2017) for a difference of means (or proportions, as means of
  0/1 values). With the difference estimate ``d`` whose variance is ``V = s_a²/n_a +
  s_b²/n_b`` and a normal mixing prior ``θ ~ N(0, τ²)`` on the true difference, the
  mixture likelihood ratio against θ = 0 is::

      Λ = sqrt(V / (V + τ²)) · exp( τ² d² / (2 V (V + τ²)) )

  and ``p = min(1, 1/Λ)``. The *always-valid* p-value is the running minimum of ``p`` over
  every look; stopping the first time it drops below ``alpha`` keeps the type-I error at
  ``alpha`` however often one looks (a fixed-horizon test checked every tick does not).
  We set ``τ`` to the minimum detectable effect: the prior puts its mass on effects of the
  size the experiment is meant to find.

>>> r = two_proportion_ztest(800, 1000, 850, 1000, alpha=0.05)
>>> round(r.effect, 3), r.p_value < 0.01
(0.05, True)
>>> sample_size_proportions(0.5, 0.1, alpha=0.05, power=0.8)
388
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class TestResult:
    """Effect of the challenger over the champion with its interval and p-value."""

    test: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    n_champion: int
    n_challenger: int
    champion_value: float
    challenger_value: float

    __test__ = False  # not a pytest test class

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def two_proportion_ztest(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, alpha: float = 0.05
) -> TestResult:
    """Two-sided z-test of ``p_b - p_a`` (a = champion, b = challenger).

    Raises:
        ValueError: an arm has no rows.
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both arms need at least one row")
    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = p_b - p_a
    if se0 == 0:
        p_value = 1.0 if diff == 0 else 0.0
    else:
        p_value = float(2 * stats.norm.sf(abs(diff / se0)))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    z = float(stats.norm.ppf(1 - alpha / 2))
    return TestResult("two_proportion_z", diff, diff - z * se, diff + z * se, p_value, n_a, n_b, p_a, p_b)


def welch_ttest(a: np.ndarray, b: np.ndarray, *, alpha: float = 0.05) -> TestResult:
    """Welch's two-sided t-test of ``mean(b) - mean(a)`` (a = champion, b = challenger).

    Raises:
        ValueError: an arm has fewer than two values.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's t-test needs at least two values per arm")
    diff = float(b.mean() - a.mean())
    if a.var() == 0 and b.var() == 0:
        p = 1.0 if diff == 0 else 0.0
        return TestResult("welch_t", diff, diff, diff, p, len(a), len(b), float(a.mean()), float(b.mean()))
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(1 - alpha)
    return TestResult(
        "welch_t", diff, float(ci.low), float(ci.high), float(res.pvalue), len(a), len(b),
        float(a.mean()), float(b.mean()),
    )


def sample_size_proportions(baseline: float, mde: float, *, alpha: float, power: float) -> int:
    """Rows per arm to detect ``baseline → baseline + mde`` (two-sided, equal arms)."""
    p1 = min(max(baseline, 1e-6), 1 - 1e-6)
    p2 = min(max(p1 + mde, 1e-6), 1 - 1e-6)
    if p2 == p1:
        p2 = max(p1 - mde, 1e-6)
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    p_bar = (p1 + p2) / 2
    n = (z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2
    return int(math.ceil(n / (p2 - p1) ** 2))


def sample_size_means(std: float, mde: float, *, alpha: float, power: float) -> int:
    """Rows per arm to detect a difference of means of ``mde`` when values vary by ``std``."""
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return int(math.ceil(2 * (std**2) * (z_a + z_b) ** 2 / mde**2))


def msprt(a: np.ndarray, b: np.ndarray, *, tau: float, alpha: float = 0.05,
          previous_p: float = 1.0) -> TestResult:
    """One look of the mixture SPRT; ``previous_p`` is the always-valid p-value so far.

    Returns:
        A :class:`TestResult` whose ``p_value`` is the always-valid p-value (the running
        minimum) and whose interval is the always-valid confidence sequence at ``alpha``.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n_a, n_b = len(a), len(b)
    if n_a < 2 or n_b < 2:
        return TestResult("msprt", 0.0, -math.inf, math.inf, previous_p, n_a, n_b,
                          float(a.mean()) if n_a else math.nan, float(b.mean()) if n_b else math.nan)
    d = float(b.mean() - a.mean())
    v = float(a.var(ddof=1) / n_a + b.var(ddof=1) / n_b)
    v = max(v, 1e-12)
    t2 = tau * tau
    log_lr = 0.5 * math.log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2))
    p_now = float(min(1.0, math.exp(-log_lr)))
    p_value = min(previous_p, p_now)
    # confidence sequence: the θ where the mixture ratio centred at θ stays below 1/alpha
    radius_sq = v * (v + t2) / t2 * (2 * math.log(1 / alpha) - math.log(v / (v + t2)))
    radius = math.sqrt(max(radius_sq, 0.0))
    return TestResult("msprt", d, d - radius, d + radius, p_value, n_a, n_b, float(a.mean()), float(b.mean()))
