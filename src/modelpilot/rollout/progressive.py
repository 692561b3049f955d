"""What shadow, A/B and canary share: starting, concluding, and reading per-arm numbers.

A progressive rollout never moves ``champion`` until it decides. ``start`` writes the
rollout state (compare-and-set on its revision), points the ``challenger`` alias at the
candidate and logs ``rollout_started``; servers pick the state up on their next refresh
and start routing. ``conclude`` is the only way out:

* ``promoted`` — the state is marked first (compare-and-set: only one actor concludes),
  then ``champion`` moves with compare-and-set against the champion the rollout started
  from; if an operator moved it meanwhile, the rollout ends ``superseded`` instead.
* ``rolled_back`` / ``rejected`` — the candidate stops receiving traffic at once, its
  version is marked ``rejected`` and the event carries the numbers behind the decision.

Per-arm numbers come from the prediction log: predictions (role ``primary`` for answering
arms, ``shadow`` for shadow copies, ``error`` for failed challenger calls) joined with the
latest feedback label and reward per request id.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelpilot.errors import Conflict, NotFound
from modelpilot.rollout import state as st
from modelpilot.rollout.base import RolloutDecision
from modelpilot.rollout.replace import promote
from modelpilot.store import Store

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore
    from modelpilot.config import PilotConfig

CHALLENGER_ALIAS = "challenger"


def wall_now() -> datetime:
    return datetime.now(UTC)


class ProgressiveStrategy:
    """Base of the strategies that send the candidate live traffic before deciding.

    Args:
        cfg: the configuration (the ``rollout`` and ``gates`` sections are read).
        artifacts: where the prediction log is (needed by :meth:`advance`).
    """

    name: str = ""
    shadow: bool = False

    def __init__(self, cfg: PilotConfig | None = None, artifacts: ArtifactStore | None = None) -> None:
        self.cfg = cfg
        self.artifacts = artifacts

    # ------------------------------------------------------------------ to override

    def initial_share(self) -> float:
        return 0.0

    def start_numbers(self) -> dict[str, Any]:
        return {}

    def step(self, store: Store, state: st.RolloutState, revision: int, now: datetime) -> RolloutDecision:
        raise NotImplementedError

    # ------------------------------------------------------------------ the protocol

    def _config(self) -> PilotConfig:
        if self.cfg is None:
            from modelpilot.errors import ConfigError

            raise ConfigError(f"the {self.name} rollout needs the configuration: use get_strategy(name, cfg=cfg)")
        return self.cfg

    def start(
        self, store: Store, model: str, candidate: int, *, champion: int | None, reason: str,
        numbers: dict[str, Any], now: datetime | None = None, actor: str = "controller",
    ) -> RolloutDecision:
        """Begin routing traffic to ``candidate`` (promote at once when there is no champion)."""
        now = now or wall_now()
        if champion is None:  # nothing to compare with: the first model simply becomes champion
            promote(store, model, candidate, champion=None, actor=actor, reason=f"{reason}; no champion yet",
                    numbers=numbers, now=now)
            return RolloutDecision("promoted", reason, numbers)
        previous, revision = st.load(store, model)
        if previous is not None and previous.active:
            superseded = previous.decided("superseded", f"v{candidate} started a new {self.name} rollout", now=now)
            revision = st.save(store, superseded, revision)
            self._unalias(store, model, previous.candidate)
        state = st.RolloutState(
            model=model, id=st.new_rollout_id(), strategy=self.name, candidate=candidate, champion=champion,
            started_at=now.isoformat(), log_since=wall_now().isoformat(), share=self.initial_share(),
            shadow=self.shadow, step_started_at=now.isoformat(), step_log_since=wall_now().isoformat(),
            numbers=dict(numbers), reason=reason,
        )
        st.save(store, state, revision)
        with contextlib.suppress(NotFound):
            store.set_alias(model, CHALLENGER_ALIAS, candidate, actor=actor, reason=f"{self.name} rollout of v{candidate}")
        info = {"strategy": self.name, "candidate": candidate, "champion": champion, "share": state.share,
                "rollout_id": state.id, **self.start_numbers()}
        store.add_event("rollout_started", model=model, subject=f"v{candidate}", actor=actor,
                        reason=f"{self.name} rollout of v{candidate} against v{champion}: {reason}", numbers=info)
        return RolloutDecision("in_progress", f"{self.name} rollout started", info)

    def advance(self, store: Store, model: str, *, now: datetime | None = None) -> RolloutDecision | None:
        """Look at the traffic so far and move the rollout on (idempotent per store state)."""
        now = now or wall_now()
        state, revision = st.load(store, model)
        if state is None or not state.active:
            return None
        champion = store.get_alias(model, "champion")
        if champion != state.champion:
            return self.conclude(store, state, revision, "superseded",
                                 f"the champion moved to v{champion} outside the rollout", {}, now)
        return self.step(store, state, revision, now)

    # ------------------------------------------------------------------ conclusions

    def conclude(
        self, store: Store, state: st.RolloutState, revision: int, status: str, reason: str,
        numbers: dict[str, Any], now: datetime, *, actor: str = "controller",
    ) -> RolloutDecision:
        """End the rollout with ``status`` ("promoted", "rolled_back", "rejected", "superseded").

        Raises:
            Conflict: another actor changed the rollout first (nothing was done here).
        """
        model, candidate = state.model, state.candidate
        numbers = {**numbers, "candidate": candidate, "champion": state.champion, "strategy": state.strategy}
        revision = st.save(store, state.decided(status, reason, numbers, now), revision)
        self._unalias(store, model, candidate)
        if status == "promoted":
            try:
                promote(store, model, candidate, champion=state.champion, actor=actor, reason=reason,
                        numbers={**state.numbers, **numbers}, now=now)
            except Conflict:
                now_champion = store.get_alias(model, "champion")
                why = f"v{candidate} was not promoted: the champion moved to v{now_champion} meanwhile"
                st.save(store, state.decided("superseded", why, numbers, now), revision)
                store.add_event("rollout_superseded", model=model, subject=f"v{candidate}", actor=actor,
                                reason=why, numbers=numbers)
                return RolloutDecision("superseded", why, numbers)
            return RolloutDecision("promoted", reason, numbers)
        if status in ("rolled_back", "rejected"):
            store.set_version_status(model, candidate, "rejected", actor=actor, reason=reason)
            kind = "rolled_back" if status == "rolled_back" else "rollout_rejected"
            store.add_event(kind, model=model, subject=f"v{candidate}", actor=actor,
                            reason=f"{reason}; v{state.champion} keeps serving", numbers=numbers)
        else:
            store.add_event(f"rollout_{status}", model=model, subject=f"v{candidate}", actor=actor,
                            reason=reason, numbers=numbers)
        return RolloutDecision(status, reason, numbers)

    @staticmethod
    def _unalias(store: Store, model: str, candidate: int) -> None:
        if store.get_alias(model, CHALLENGER_ALIAS) == candidate:
            with contextlib.suppress(NotFound):  # deleted meanwhile by a concurrent conclusion
                store.delete_alias(model, CHALLENGER_ALIAS, actor="controller", reason=f"rollout of v{candidate} ended")

    # ------------------------------------------------------------------ the log

    def rows(self, model: str, since: str | None, role: str | None) -> pd.DataFrame:
        """Prediction-log rows (joined with feedback) logged since ``since`` (wall clock)."""
        from modelpilot.serving.logreader import PredictionLogReader

        if self.artifacts is None:
            from modelpilot.errors import ConfigError

            raise ConfigError(f"the {self.name} rollout reads the prediction log: pass artifacts= to get_strategy")
        reader = PredictionLogReader(self.artifacts, model)
        try:
            return reader.joined(since=datetime.fromisoformat(since) if since else None, role=role)
        finally:
            reader.close()


# ---------------------------------------------------------------------- per-arm numbers


def outcomes(rows: pd.DataFrame, task: str, metric: str) -> np.ndarray:
    """One value per labelled row, larger = better: 1/0 correct (classification), minus the
    squared error (rmse, r2) or minus the absolute error (mae) for regression."""
    if task == "classification":
        same = rows["prediction"].astype(str).to_numpy() == rows["label"].astype(str).to_numpy()
        return np.asarray(same, dtype=np.float64)
    err = rows["prediction"].astype(np.float64).to_numpy() - pd.to_numeric(rows["label"], errors="coerce").to_numpy()
    return np.asarray(-np.abs(err) if metric == "mae" else -(err**2), dtype=np.float64)


def arm_numbers(rows: pd.DataFrame, task: str, metric: str) -> dict[str, Any]:
    """Counts and metrics of one arm's rows (predictions joined with feedback)."""
    labelled = rows[rows["label"].notna()] if len(rows) else rows
    out: dict[str, Any] = {"requests": int(len(rows)), "labelled": int(len(labelled))}
    if len(rows):
        out["latency_p99_ms"] = float(np.percentile(rows["latency_ms"].to_numpy(dtype=np.float64), 99))
    if len(labelled):
        from modelpilot.monitoring import classification_metrics, regression_metrics

        if task == "classification":
            m = classification_metrics(labelled["label"].astype(str).to_numpy(), labelled["prediction"].astype(str).to_numpy())
        else:
            m = regression_metrics(pd.to_numeric(labelled["label"], errors="coerce").to_numpy(),
                                   labelled["prediction"].astype(np.float64).to_numpy())
        name = metric if metric in m else ("accuracy" if task == "classification" else "rmse")
        out["metric"], out["value"] = name, float(m[name])
    rewards = rows["reward"].dropna() if "reward" in rows and len(rows) else pd.Series(dtype=float)
    if len(rewards):
        out["rewards"], out["reward_mean"] = int(len(rewards)), float(rewards.mean())
    return out
