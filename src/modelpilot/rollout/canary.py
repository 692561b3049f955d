"""``canary``: traffic steps (e.g. 5 → 25 → 50 → 100 %), health-checked, rolled back at once.

Each step holds for ``rollout.canary.hold_requests`` challenger requests and/or
``hold_duration`` of the controller's clock. On every tick, whether the step is over or
not, the challenger's health is checked against the configured limits:

* error rate — failed challenger calls (logged with role ``error``) over all its calls;
* latency — the challenger's p99 against the champion's p99 *in the same period* (the step
  for a canary, the experiment for A/B): a breach when it is more than ``max_latency_ratio``
  times and more than ``latency_slack_ms`` above it on significantly more than the 1 % of
  calls a p99 allows (binomial test at :data:`LATENCY_ALPHA`), judged only once both arms have
  ``min_latency_samples`` calls (load slows both arms alike; a p99 of 20 calls is their
  maximum). ``max_latency_p99_ms``, when set, is an absolute ceiling on the same sample
  (see :func:`latency_check`);
* divergence — Jensen–Shannon distance between the challenger's prediction distribution
  in this step and the champion's during the rollout (the monitoring drift method; see
  :func:`score_divergence`);
* the labelled metric — once both arms have ``min_labelled`` labelled rows, the challenger
  may not be worse than the champion by more than ``metric_tolerance`` (points of the metric
  for bounded scores, a fraction of the champion's value for error metrics such as rmse:
  :func:`modelpilot.metrics.shortfall`).

Any breach ends the rollout at once (``rolled_back`` with every number); a healthy step
logs ``canary_step`` and moves to the next; after the last step the candidate is promoted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from modelpilot.metrics import format_shortfall, shortfall
from modelpilot.rollout import state as st
from modelpilot.rollout.base import RolloutDecision
from modelpilot.rollout.progressive import ProgressiveStrategy, arm_numbers, wall_now
from modelpilot.store import Store

# fewer calls than this say nothing about an error rate or a distribution
MIN_HEALTH_ROWS = 20
# level of the test "more than 1 % of the challenger's calls are over the latency limit"
LATENCY_ALPHA = 0.01


def split_arms(rows: pd.DataFrame, state: st.RolloutState) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(champion rows, challenger rows, challenger errors) of a frame of logged rows."""
    if not len(rows):
        return rows, rows, rows
    version, role = rows["model_version"].to_numpy(), rows["role"].to_numpy()
    champ = rows[(version == state.champion) & (role == "primary")]
    chal = rows[(version == state.candidate) & (role == ("shadow" if state.shadow else "primary"))]
    errors = rows[(version == state.candidate) & (role == "error")]
    return champ, chal, errors


def _p99(rows: pd.DataFrame) -> float:
    return float(np.percentile(rows["latency_ms"].to_numpy(dtype=np.float64), 99))


def latency_check(cc: Any, champ: pd.DataFrame, chal: pd.DataFrame) -> tuple[str | None, dict[str, Any]]:
    """Judge the challenger's latency against the champion's, both measured in the same period.

    Args:
        cc: the ``rollout.canary`` settings.
        champ: the champion's answered calls in the period.
        chal: the challenger's answered calls in the same period.

    Returns:
        ``(breach or None, numbers)``; ``numbers["latency"]`` is the sentence the events show,
        whether judged or not.
    """
    n_champ, n_chal = len(champ), len(chal)
    numbers: dict[str, Any] = {"latency_n_champion": n_champ, "latency_n_challenger": n_chal}
    if n_chal < cc.min_latency_samples or n_champ < cc.min_latency_samples:
        numbers["latency"] = (
            f"latency not judged yet: {n_chal} challenger / {n_champ} champion calls in the period, "
            f"{cc.min_latency_samples} each needed (rollout.canary.min_latency_samples)"
        )
        return None, numbers
    ours, theirs = _p99(chal), _p99(champ)
    limit = max(theirs * cc.max_latency_ratio, theirs + cc.latency_slack_ms)
    # a p99 is exceeded by 1 % of calls by definition: a few slow calls (a GC pause, a busy
    # core) are noise; the challenger is slow when significantly more than 1 % of its calls
    # exceed the limit (one-sided binomial test)
    over = int((chal["latency_ms"].to_numpy(dtype=np.float64) > limit).sum())
    p_value = float(binomtest(over, n_chal, 0.01, alternative="greater").pvalue) if over else 1.0
    numbers.update(latency_p99_ms=ours, champion_latency_p99_ms=theirs, latency_limit_ms=limit,
                   latency_ratio=ours / theirs if theirs > 0 else None, latency_over_limit=over,
                   latency_p_value=p_value)
    same = (f"latency p99 {ours:.0f} ms vs the champion's {theirs:.0f} ms in the same period "
            f"({n_chal}/{n_champ} calls)")
    numbers["latency"] = same
    breach = None
    if ours > limit and p_value < LATENCY_ALPHA:
        breach = (f"{same}: more than {cc.max_latency_ratio:g}x and {cc.latency_slack_ms:g} ms above it "
                  f"on {over} calls (p={p_value:.2g} against the 1 % a p99 allows; "
                  "rollout.canary.max_latency_ratio, latency_slack_ms)")
    elif cc.max_latency_p99_ms is not None and ours > cc.max_latency_p99_ms:
        breach = f"{same}: above the hard limit {cc.max_latency_p99_ms:.0f} ms (rollout.canary.max_latency_p99_ms)"
    return breach, numbers


def health(
    cfg: Any, state: st.RolloutState, step_chal: pd.DataFrame, step_errors: pd.DataFrame,
    champ_all: pd.DataFrame, chal_all: pd.DataFrame, task: str, metric: str, *, divergence: bool = True,
    step_champ: pd.DataFrame | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """The breached limits (empty = healthy) and the numbers measured.

    ``step_champ`` is the champion's calls in the same period as ``step_chal`` (default
    ``champ_all``), the baseline of the latency check.
    """
    cc = cfg.rollout.canary
    breaches: list[str] = []
    numbers: dict[str, Any] = {}
    calls = len(step_chal) + len(step_errors)
    if calls >= MIN_HEALTH_ROWS or len(step_errors) >= MIN_HEALTH_ROWS // 2:
        rate = len(step_errors) / max(calls, 1)
        numbers["error_rate"] = rate
        if rate > cc.max_error_rate:
            breaches.append(f"error rate {rate:.1%} > {cc.max_error_rate:.1%} ({len(step_errors)} of {calls} calls failed)")
    slow, latency = latency_check(cc, champ_all if step_champ is None else step_champ, step_chal)
    numbers.update(latency)
    if slow:
        breaches.append(slow)
    if divergence and len(step_chal) >= MIN_HEALTH_ROWS and len(champ_all) >= MIN_HEALTH_ROWS:
        div = score_divergence(champ_all, step_chal, task)
        if div is not None:
            numbers["divergence"] = div
            if div > cc.max_divergence:
                breaches.append(f"score divergence (Jensen-Shannon) {div:.3f} > {cc.max_divergence}")
    a, b = arm_numbers(champ_all, task, metric), arm_numbers(chal_all, task, metric)
    if min(a["labelled"], b["labelled"]) >= cc.min_labelled and "value" in a and "value" in b:
        m = a["metric"]
        gap = shortfall(m, b["value"], a["value"])
        numbers.update(metric=m, champion_metric=a["value"], challenger_metric=b["value"])
        if gap > cc.metric_tolerance:
            breaches.append(
                f"{m} {b['value']:.4f} vs champion {a['value']:.4f} on labelled traffic: "
                f"worse by {format_shortfall(m, gap)} > tolerance {format_shortfall(m, cc.metric_tolerance)}"
            )
    return breaches, numbers


def score_divergence(reference: pd.DataFrame, current: pd.DataFrame, task: str) -> float | None:
    """Jensen–Shannon distance between two arms' prediction distributions.

    Classification compares the predicted classes (categories): tree ensembles give lumpy
    score distributions whose quantile bins tie, and on a few dozen rows the score
    histogram of two equally good models differs by noise alone; the class mix does not.
    Regression compares the predictions on the reference's quantile bins.
    """
    from modelpilot.monitoring import get_drift_method

    if len(reference) < MIN_HEALTH_ROWS or not len(current):
        return None
    method = get_drift_method("jensenshannon")
    if task == "classification":
        ref = pd.DataFrame({"p": reference["prediction"].astype(str).to_numpy()})
        cur = pd.DataFrame({"p": current["prediction"].astype(str).to_numpy()})
        profile = method.fit(ref, categorical=["p"])
    else:
        ref = pd.DataFrame({"p": pd.to_numeric(reference["score"], errors="coerce").to_numpy()})
        cur = pd.DataFrame({"p": pd.to_numeric(current["score"], errors="coerce").to_numpy()})
        profile = method.fit(ref, numeric=["p"])
    return float(method.score(profile, cur)["p"].statistic)


class CanaryStrategy(ProgressiveStrategy):
    name = "canary"

    def initial_share(self) -> float:
        return float(self._config().rollout.canary.steps[0]) / 100.0

    def start_numbers(self) -> dict[str, Any]:
        cc = self._config().rollout.canary
        return {"steps": list(cc.steps), "hold_requests": cc.hold_requests, "hold_duration": cc.hold_duration}

    def step(self, store: Store, state: st.RolloutState, revision: int, now: datetime) -> RolloutDecision:
        cfg = self._config()
        cc = cfg.rollout.canary
        version = store.get_version(state.model, state.candidate)
        metric = cfg.primary_metric
        rows = self.rows(state.model, state.log_since, role=None)
        champ_all, chal_all, _ = split_arms(rows, state)
        step_since = pd.Timestamp(state.step_log_since or state.log_since)
        recent = rows[rows["ts"] >= step_since] if len(rows) else rows
        step_champ, step_chal, step_errors = split_arms(recent, state)
        breaches, numbers = health(cfg, state, step_chal, step_errors, champ_all, chal_all, version.task, metric,
                                   step_champ=step_champ)
        share = state.share
        numbers.update(step=state.step + 1, share=share, step_requests=len(step_chal) + len(step_errors))
        arms = {"champion": arm_numbers(champ_all, version.task, metric),
                "challenger": {**arm_numbers(chal_all, version.task, metric),
                               "errors": int((rows["role"] == "error").sum()) if len(rows) else 0}}
        if breaches:
            reason = f"canary step {state.step + 1} ({share:.0%}) unhealthy: " + "; ".join(breaches)
            return self.conclude(store, state.evolve(arms=arms), revision, "rolled_back", reason, numbers, now)
        held = numbers["step_requests"] >= (cc.hold_requests or 0)
        if cc.hold_duration is not None:
            started = datetime.fromisoformat(state.step_started_at or state.started_at)
            held = held and (now - started).total_seconds() >= cc.hold_duration
        extra = {**state.extra, "step_requests": numbers["step_requests"]}
        if not held:
            st.save(store, state.evolve(arms=arms, extra=extra), revision)
            return RolloutDecision("in_progress", f"canary step {state.step + 1} at {share:.0%}", numbers)
        store.add_event(
            "canary_step", model=state.model, subject=f"v{state.candidate}", actor="controller",
            reason=f"step {state.step + 1}/{len(cc.steps)} at {share:.0%} healthy after "
            f"{numbers['step_requests']} requests; {numbers['latency']}", numbers=numbers,
        )
        history = [*state.history, numbers]
        if state.step + 1 >= len(cc.steps):
            reason = f"canary healthy at every step ({', '.join(f'{s:g}%' for s in cc.steps)})"
            return self.conclude(store, state.evolve(arms=arms, history=history), revision, "promoted", reason, numbers, now)
        nxt = state.step + 1
        st.save(store, state.evolve(
            step=nxt, share=float(cc.steps[nxt]) / 100.0, step_started_at=now.isoformat(),
            step_log_since=wall_now().isoformat(), arms=arms, history=history, extra={**extra, "step_requests": 0},
        ), revision)
        return RolloutDecision("in_progress", f"canary moved to step {nxt + 1} ({cc.steps[nxt]:g}%)", numbers)
