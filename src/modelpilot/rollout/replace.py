"""``replace``: the candidate becomes champion at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelpilot.rollout.base import RolloutDecision
from modelpilot.store import Store


def promote(
    store: Store,
    model: str,
    version: int,
    *,
    champion: int | None,
    actor: str = "controller",
    reason: str,
    numbers: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Move ``champion`` to ``version`` if it still points at ``champion`` (compare-and-set).

    ``now`` is the promotion's time on the caller's clock (a backtest's simulated one; the
    wall clock by default): the new champion's tenure, over which it is measured against the
    model it retired (:mod:`modelpilot.controller.counterfactual`), starts there.

    Raises:
        Conflict: the champion moved in the meantime (another actor promoted or rolled back).
    """
    store.set_alias(
        model,
        "champion",
        version,
        actor=actor,
        reason=reason,
        numbers={**(numbers or {}), "from_version": champion, "to_version": version},
        expected_current=champion,
    )
    store.add_event(
        "promoted",
        model=model,
        subject=f"v{version}",
        actor=actor,
        reason=reason,
        numbers={**(numbers or {}), "from_version": champion, "to_version": version},
    )
    if champion is not None and champion != version:
        from modelpilot.rollout.retired import open_record

        open_record(store, model, champion=version, retired=champion, now=now)


class ReplaceStrategy:
    name = "replace"

    def __init__(self, cfg: Any = None, artifacts: Any = None) -> None:
        pass  # nothing to configure

    def start(
        self, store: Store, model: str, candidate: int, *, champion: int | None, reason: str,
        numbers: dict[str, Any], now: Any = None, actor: str = "controller",
    ) -> RolloutDecision:
        promote(store, model, candidate, champion=champion, actor=actor, reason=reason, numbers=numbers, now=now)
        return RolloutDecision("promoted", reason, numbers)

    def advance(self, store: Store, model: str, *, now: Any = None) -> RolloutDecision | None:
        return None  # nothing progressive to advance
