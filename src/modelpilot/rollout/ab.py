"""``ab``: a share of routing keys goes to the challenger; a statistical test decides.

The unit is the labelled request. Each arm's outcomes are per-row values where larger is
better: correct (1/0) for classification, minus the squared (or absolute) error for
regression, or the business ``reward`` sent with feedback when ``rollout.ab.decide_on:
reward``. Proportions (classification on the metric) use the two-proportion z-test,
everything else Welch's t-test (:mod:`modelpilot.rollout.stats`).

* Fixed horizon (default): the minimum sample per arm is computed from
  ``min_detectable_effect``, ``alpha`` and ``power`` (and the champion arm's observed rate
  or spread); the test runs once, when both arms have it. Promote when the challenger is
  significantly better, reject otherwise.
* ``sequential: true``: the mixture SPRT's always-valid p-value is updated every tick and
  the experiment stops the first time it falls below ``alpha``.

Either way ``max_duration`` (controller clock) ends an inconclusive experiment with a
rejection, and the canary's error-rate and latency limits apply to the challenger arm: a
faulty challenger is rolled back at once. Latency is judged against the champion arm over the
same period (:func:`modelpilot.rollout.canary.latency_check`), and every decision says how.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.rollout import state as st
from modelpilot.rollout import stats
from modelpilot.rollout.base import RolloutDecision
from modelpilot.rollout.canary import health, split_arms
from modelpilot.rollout.progressive import ProgressiveStrategy, arm_numbers, outcomes
from modelpilot.store import Store

MIN_ROWS_PER_ARM = 30


def arm_values(decide_on: str, rows: pd.DataFrame, task: str, metric: str) -> np.ndarray:
    """One value per labelled row of an arm (or per reward with ``decide_on: reward``), larger = better."""
    if decide_on == "reward":
        return np.asarray(rows["reward"].dropna().to_numpy(dtype=np.float64))
    labelled = rows[rows["label"].notna()]
    return outcomes(labelled, task, metric)


def ab_test(ab: Any, task: str, a: np.ndarray, b: np.ndarray, *,
            previous_p: float = 1.0) -> tuple[stats.TestResult | None, int]:
    """The A/B test of ``rollout.ab`` on the champion's (``a``) and challenger's (``b``) values.

    Returns:
        ``(result, needed)``: the test's result, or None while the arms are too small (the
        planned sample for a fixed horizon, :data:`MIN_ROWS_PER_ARM` for the sequential
        test), and the rows per arm the fixed-horizon test plans for.
    """
    proportions = ab.decide_on == "metric" and task == "classification"
    if proportions:
        baseline = float(a.mean()) if len(a) >= MIN_ROWS_PER_ARM else 0.5
        needed = stats.sample_size_proportions(baseline, ab.min_detectable_effect, alpha=ab.alpha, power=ab.power)
    else:
        spread = float(np.concatenate([a, b]).std(ddof=1)) if len(a) + len(b) > 2 else 1.0
        needed = stats.sample_size_means(max(spread, 1e-9), ab.min_detectable_effect, alpha=ab.alpha, power=ab.power)
    needed = max(needed, MIN_ROWS_PER_ARM)
    if ab.sequential and min(len(a), len(b)) >= MIN_ROWS_PER_ARM:
        return stats.msprt(a, b, tau=ab.min_detectable_effect, alpha=ab.alpha, previous_p=previous_p), needed
    if not ab.sequential and min(len(a), len(b)) >= needed:
        if proportions:
            return stats.two_proportion_ztest(int(a.sum()), len(a), int(b.sum()), len(b), alpha=ab.alpha), needed
        return stats.welch_ttest(a, b, alpha=ab.alpha), needed
    return None, needed


class ABStrategy(ProgressiveStrategy):
    name = "ab"

    def initial_share(self) -> float:
        return float(self._config().rollout.ab.share)

    def start_numbers(self) -> dict[str, Any]:
        ab = self._config().rollout.ab
        return {"mde": ab.min_detectable_effect, "alpha": ab.alpha, "power": ab.power,
                "sequential": ab.sequential, "decide_on": ab.decide_on}

    def _values(self, rows: pd.DataFrame, task: str, metric: str) -> np.ndarray:
        return arm_values(self._config().rollout.ab.decide_on, rows, task, metric)

    def step(self, store: Store, state: st.RolloutState, revision: int, now: datetime) -> RolloutDecision:
        cfg = self._config()
        ab = cfg.rollout.ab
        version = store.get_version(state.model, state.candidate)
        metric = cfg.primary_metric
        rows = self.rows(state.model, state.log_since, role=None)
        champ, chal, errors = split_arms(rows, state)
        arms = {"champion": arm_numbers(champ, version.task, metric),
                "challenger": {**arm_numbers(chal, version.task, metric), "errors": len(errors)}}
        breaches, health_numbers = health(cfg, state, chal, errors, champ, chal, version.task, metric, divergence=False)
        breaches = [b for b in breaches if not b.startswith(metric)]  # the test judges the metric
        if breaches:
            reason = "A/B challenger unhealthy: " + "; ".join(breaches)
            return self.conclude(store, state.evolve(arms=arms), revision, "rolled_back", reason, health_numbers, now)
        a, b = self._values(champ, version.task, metric), self._values(chal, version.task, metric)
        result, needed = ab_test(ab, version.task, a, b, previous_p=float(state.extra.get("p_value", 1.0)))
        extra = {**state.extra, "n_required": needed, "labelled_left": max(0, needed - min(len(a), len(b)))}
        if ab.sequential and result is not None:
            extra["p_value"] = result.p_value
        numbers: dict[str, Any] = {"n_required": needed, "n_champion": len(a), "n_challenger": len(b),
                                   "decide_on": ab.decide_on, **(result.to_dict() if result else {}),
                                   **{k: v for k, v in health_numbers.items() if k.startswith("latency")}}
        what = "reward" if ab.decide_on == "reward" else metric
        if result is not None and result.significant(ab.alpha):
            interval = f"{100 * (1 - ab.alpha):.0f}% CI [{result.ci_low:+.4f}, {result.ci_high:+.4f}]"
            desc = (f"{result.test}: effect on {what} {result.effect:+.4f} ({interval}), p={result.p_value:.3g}, "
                    f"n={len(a)}/{len(b)}; {health_numbers['latency']}")
            state = state.evolve(arms=arms, extra=extra)
            if result.effect > 0:
                return self.conclude(store, state, revision, "promoted", f"A/B: challenger better; {desc}", numbers, now)
            return self.conclude(store, state, revision, "rejected", f"A/B: challenger worse; {desc}", numbers, now)
        if result is not None and not ab.sequential:
            desc = (f"{result.test}: effect on {what} {result.effect:+.4f}, p={result.p_value:.3g} >= {ab.alpha} "
                    f"at the planned sample of {needed} per arm")
            return self.conclude(store, state.evolve(arms=arms, extra=extra), revision, "rejected",
                                 f"A/B: no significant improvement; {desc}", numbers, now)
        started = datetime.fromisoformat(state.started_at)
        if ab.max_duration is not None and (now - started).total_seconds() >= ab.max_duration:
            return self.conclude(store, state.evolve(arms=arms, extra=extra), revision, "rejected",
                                 f"A/B: the experiment period ({ab.max_duration:g}s) ended without a significant "
                                 f"difference (n={len(a)}/{len(b)} of {needed} per arm)", numbers, now)
        st.save(store, state.evolve(arms=arms, extra=extra), revision)
        return RolloutDecision("in_progress", f"A/B collecting: {len(a)}/{len(b)} of {needed} per arm", numbers)
