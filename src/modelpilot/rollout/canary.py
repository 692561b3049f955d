"""``canary``: traffic steps (e.g. 5 → 25 → 50 → 100 %), health-checked, rolled back at once.

Each step holds for ``rollout.canary.hold_requests`` challenger requests and/or
``hold_duration`` of the controller's clock. On every tick, whether the step is over or
not, the challenger's health is checked against the configured limits:

* error rate — failed challenger calls (logged with role ``error``) over all its calls;
* latency p99 — of the requests the challenger answered in this step;
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

from modelpilot.metrics import format_shortfall, shortfall
from modelpilot.rollout import state as st
from modelpilot.rollout.base import RolloutDecision
from modelpilot.rollout.progressive import ProgressiveStrategy, arm_numbers, wall_now
from modelpilot.store import Store

# fewer calls than this say nothing about an error rate, a p99 or a distribution
MIN_HEALTH_ROWS = 20


def split_arms(rows: pd.DataFrame, state: st.RolloutState) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(champion rows, challenger rows, challenger errors) of a frame of logged rows."""
    if not len(rows):
        return rows, rows, rows
    version, role = rows["model_version"].to_numpy(), rows["role"].to_numpy()
    champ = rows[(version == state.champion) & (role == "primary")]
    chal = rows[(version == state.candidate) & (role == ("shadow" if state.shadow else "primary"))]
    errors = rows[(version == state.candidate) & (role == "error")]
    return champ, chal, errors


def health(
    cfg: Any, state: st.RolloutState, step_chal: pd.DataFrame, step_errors: pd.DataFrame,
    champ_all: pd.DataFrame, chal_all: pd.DataFrame, task: str, metric: str, *, divergence: bool = True,
) -> tuple[list[str], dict[str, Any]]:
    """The breached limits (empty = healthy) and the numbers measured."""
    cc = cfg.rollout.canary
    breaches: list[str] = []
    numbers: dict[str, Any] = {}
    calls = len(step_chal) + len(step_errors)
    if calls >= MIN_HEALTH_ROWS or len(step_errors) >= MIN_HEALTH_ROWS // 2:
        rate = len(step_errors) / max(calls, 1)
        numbers["error_rate"] = rate
        if rate > cc.max_error_rate:
            breaches.append(f"error rate {rate:.1%} > {cc.max_error_rate:.1%} ({len(step_errors)} of {calls} calls failed)")
    if len(step_chal) >= MIN_HEALTH_ROWS:
        p99 = float(np.percentile(step_chal["latency_ms"].to_numpy(dtype=np.float64), 99))
        numbers["latency_p99_ms"] = p99
        if p99 > cc.max_latency_p99_ms:
            breaches.append(f"latency p99 {p99:.0f} ms > {cc.max_latency_p99_ms:.0f} ms")
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
        _, step_chal, step_errors = split_arms(recent, state)
        breaches, numbers = health(cfg, state, step_chal, step_errors, champ_all, chal_all, version.task, metric)
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
            f"{numbers['step_requests']} requests", numbers=numbers,
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
