"""The rollout state: one record per model in the store (namespace ``rollout``).

Everything a server needs to route and everything the controller needs to continue a
rollout lives here, written with compare-and-set on the record's revision, so two
controllers (or a controller and an operator) never both act on the same state, and a
restarted process continues where the last one stopped.

Two clocks: ``started_at``/``step_started_at`` are the controller's clock (a simulated
one in the demo), used for durations; ``log_since``/``step_log_since`` are wall-clock
times, used to select the prediction-log rows the rollout produced.

>>> s = RolloutState(model="churn", id="r1", strategy="canary", candidate=2, champion=1,
...                  started_at="2026-01-01T00:00:00+00:00", log_since="2026-01-01T00:00:00+00:00",
...                  share=0.05)
>>> s.active, s.traffic()
(True, {'1': 0.95, '2': 0.05})
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from modelpilot.store import Store

NAMESPACE = "rollout"
IN_PROGRESS = "in_progress"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_rollout_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class RolloutState:
    """One rollout of ``candidate`` against ``champion``.

    Attributes:
        id: names this rollout; it salts the routing hash, so a new rollout reshuffles keys.
        strategy: "shadow" | "ab" | "canary".
        status: "in_progress", then "promoted", "rolled_back", "rejected" or "superseded".
        share: the share of routing keys answered by the candidate (0 for shadow).
        shadow: whether the candidate scores a copy of the champion's traffic.
        step: the canary step index (0 for the other strategies).
        arms: per-arm counts and metrics as of the last controller tick.
        decision: the final decision ``{"status", "reason", "numbers", "time"}`` or None.
        history: one entry per finished canary step (or A/B look).
        numbers: the gate's numbers for the candidate (kept for the promotion event).
        extra: strategy-specific values (e.g. the running always-valid p-value).
    """

    model: str
    id: str
    strategy: str
    candidate: int
    champion: int | None
    started_at: str
    log_since: str
    status: str = IN_PROGRESS
    share: float = 0.0
    shadow: bool = False
    step: int = 0
    step_started_at: str | None = None
    step_log_since: str | None = None
    arms: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def active(self) -> bool:
        return self.status == IN_PROGRESS

    def traffic(self) -> dict[str, float]:
        """Share of traffic each version answers (shadowing does not count)."""
        if self.champion is None:
            return {str(self.candidate): 1.0}
        if not self.active:
            return {}
        return {str(self.champion): round(1.0 - self.share, 6), str(self.candidate): round(self.share, 6)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> RolloutState:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in value.items() if k in known})

    def evolve(self, **changes: Any) -> RolloutState:
        return replace(self, **changes)

    def decided(self, status: str, reason: str, numbers: dict[str, Any] | None = None,
                now: datetime | None = None) -> RolloutState:
        """This state with its final decision (no more traffic to the candidate)."""
        decision = {"status": status, "reason": reason, "numbers": numbers or {},
                    "time": (now or utcnow()).isoformat()}
        return replace(self, status=status, share=0.0, shadow=False, decision=decision)


def load(store: Store, model: str) -> tuple[RolloutState | None, int]:
    """The model's rollout state (the latest, decided or not) and its revision (0: none)."""
    record = store.get_state_record(NAMESPACE, model)
    if record is None:
        return None, 0
    return RolloutState.from_dict(dict(record.value)), record.revision


def save(store: Store, state: RolloutState, revision: int) -> int:
    """Write ``state`` if the stored revision is still ``revision``.

    Raises:
        Conflict: someone else changed the rollout meanwhile.
    """
    return store.put_state(NAMESPACE, state.model, state.to_dict(), expected_revision=revision)


def active(store: Store, model: str) -> RolloutState | None:
    """The rollout in progress for ``model``, or None."""
    state, _ = load(store, model)
    return state if state is not None and state.active else None


def describe(store: Store, model: str, cfg: Any = None, now: datetime | None = None) -> dict[str, Any] | None:
    """What ``modelpilot status`` and ``GET /v1/models/{name}`` show about the rollout.

    Returns:
        ``{"strategy", "status", "candidate", "champion", "step", "steps", "traffic",
        "shadow", "arms", "time_left_seconds", "requests_left", "decision", ...}`` or None
        when the model never had a progressive rollout.
    """
    state, _ = load(store, model)
    if state is None:
        return None
    now = now or utcnow()
    out: dict[str, Any] = {
        "id": state.id, "strategy": state.strategy, "status": state.status,
        "candidate": state.candidate, "champion": state.champion,
        "started_at": state.started_at, "step": state.step, "traffic": state.traffic(),
        "shadow": state.candidate if state.shadow else None, "arms": state.arms,
        "decision": state.decision, "history": state.history,
        "time_left_seconds": None, "requests_left": None,
    }
    if cfg is not None and state.active:
        rc = cfg.rollout
        if state.strategy == "canary":
            steps = list(rc.canary.steps)
            out["steps"] = steps
            since = datetime.fromisoformat(state.step_started_at or state.started_at)
            if rc.canary.hold_duration is not None:
                out["time_left_seconds"] = max(0.0, rc.canary.hold_duration - (now - since).total_seconds())
            if rc.canary.hold_requests is not None:
                done = int(state.extra.get("step_requests", 0))
                out["requests_left"] = max(0, rc.canary.hold_requests - done)
        elif state.strategy == "ab" and rc.ab.max_duration is not None:
            since = datetime.fromisoformat(state.started_at)
            out["time_left_seconds"] = max(0.0, rc.ab.max_duration - (now - since).total_seconds())
        if state.strategy == "ab":
            out["requests_left"] = state.extra.get("labelled_left")
        if state.strategy == "shadow":
            # the decision counts labelled shadow rows paired with the champion's answer
            out["requests_left"] = max(0, rc.shadow.min_labelled - int(state.arms.get("shadow", {}).get("paired", 0)))
    return out
