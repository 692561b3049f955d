"""``shadow``: the champion answers; the challenger scores a copy of the traffic off the
response path, logged with role ``shadow``.

Once ``rollout.shadow.min_labelled`` shadowed requests carry labels, both models'
predictions on exactly those requests go through the gate's paired comparison
(:func:`~modelpilot.policy.compare.compare_to_champion`, the ``gates`` settings): promote
when it passes, reject otherwise. A challenger that fails on more than
``rollout.canary.max_error_rate`` of its shadow calls is rejected without waiting for
labels — it never answered anyone, so nothing has to be rolled back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from modelpilot.errors import DataError
from modelpilot.rollout import state as st
from modelpilot.rollout.base import RolloutDecision
from modelpilot.rollout.canary import MIN_HEALTH_ROWS, split_arms
from modelpilot.rollout.progressive import ProgressiveStrategy, arm_numbers
from modelpilot.store import Store


class ShadowStrategy(ProgressiveStrategy):
    name = "shadow"
    shadow = True

    def start_numbers(self) -> dict[str, Any]:
        return {"min_labelled": self._config().rollout.shadow.min_labelled}

    def step(self, store: Store, state: st.RolloutState, revision: int, now: datetime) -> RolloutDecision:
        from modelpilot.policy.compare import compare_to_champion

        cfg = self._config()
        version = store.get_version(state.model, state.candidate)
        metric = cfg.primary_metric
        rows = self.rows(state.model, state.log_since, role=None)
        champ, shadow, errors = split_arms(rows, state)
        arms = {"champion": arm_numbers(champ, version.task, metric),
                "shadow": {**arm_numbers(shadow, version.task, metric), "errors": len(errors)}}
        calls = len(shadow) + len(errors)
        if calls >= MIN_HEALTH_ROWS and len(errors) / calls > cfg.rollout.canary.max_error_rate:
            reason = f"shadow challenger failed on {len(errors)} of {calls} calls ({len(errors) / calls:.1%})"
            return self.conclude(store, state.evolve(arms=arms), revision, "rejected", reason,
                                 {"errors": len(errors), "calls": calls}, now)
        labelled = shadow[shadow["label"].notna()] if len(shadow) else shadow
        pairs = labelled.merge(champ[["request_id", "prediction", "probabilities"]], on="request_id",
                               suffixes=("_chal", "_champ")) if len(labelled) else labelled
        arms["shadow"]["paired"] = int(len(pairs))
        if len(pairs) < cfg.rollout.shadow.min_labelled:
            st.save(store, state.evolve(arms=arms), revision)
            return RolloutDecision("in_progress", f"shadow: {len(pairs)} of {cfg.rollout.shadow.min_labelled} labelled pairs", {})
        task = version.task
        if task == "classification":
            y = pairs["label"].astype(str).to_numpy()
            old, new = pairs["prediction_champ"].astype(str).to_numpy(), pairs["prediction_chal"].astype(str).to_numpy()
        else:
            y = pairs["label"].astype(np.float64).to_numpy()
            old = pairs["prediction_champ"].astype(np.float64).to_numpy()
            new = pairs["prediction_chal"].astype(np.float64).to_numpy()
        classes = [str(c) for c in version.classes] if version.classes else None
        probas: dict[str, Any] = {}
        if metric in ("roc_auc", "log_loss") and pairs["probabilities_chal"].notna().all() \
                and pairs["probabilities_champ"].notna().all():
            probas = {"proba_champion": np.vstack(pairs["probabilities_champ"].to_numpy()),
                      "proba_challenger": np.vstack(pairs["probabilities_chal"].to_numpy())}
        try:
            cmp = compare_to_champion(y, old, new, task=task, metric=metric, cfg=cfg.gates, classes=classes,
                                      seed=cfg.model.seed, **probas)
        except DataError as exc:
            st.save(store, state.evolve(arms=arms), revision)
            return RolloutDecision("in_progress", f"shadow: cannot compare yet ({exc})", {})
        numbers = {"metric": metric, "champion_metric": cmp.champion_metric, "challenger_metric": cmp.challenger_metric,
                   "delta": cmp.delta, "ci_low": cmp.ci_low, "ci_high": cmp.ci_high, "p_value": cmp.p_value,
                   "test": cmp.test, "pairs": cmp.n}
        state = state.evolve(arms=arms)
        status = "promoted" if cmp.passed else "rejected"
        return self.conclude(store, state, revision, status, f"shadow comparison on live traffic: {cmp.summary}", numbers, now)
