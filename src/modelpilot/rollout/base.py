"""The rollout contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from modelpilot.store import Store


@dataclass(frozen=True)
class RolloutDecision:
    """What a strategy did: ``promoted``, ``rolled_back``, ``in_progress`` or ``rejected``."""

    status: str
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


class RolloutStrategy(Protocol):
    """Takes a candidate that passed the gate to traffic.

    Contract: ``start`` is called once per candidate and records its state in the store
    (never only in memory), so a restarted controller continues where it stopped;
    ``advance`` is called on every controller tick while the rollout is in progress and is
    idempotent for the same store state. Both write events for what they decide.
    ``now`` is the controller's clock (durations); ``actor`` names who started it.
    Implementations are constructed with keyword arguments ``cfg`` and ``artifacts``
    (:func:`~modelpilot.rollout.get_strategy`).
    """

    name: str

    def start(
        self, store: Store, model: str, candidate: int, *, champion: int | None, reason: str,
        numbers: dict[str, Any], now: datetime | None = None, actor: str = "controller",
    ) -> RolloutDecision: ...

    def advance(self, store: Store, model: str, *, now: datetime | None = None) -> RolloutDecision | None: ...
