"""The roll-out phase of a tick: a candidate that passed the gate goes to its strategy.

:func:`release` hands a gate-passing candidate to the configured rollout strategy, or parks
it for a person's approval (``gates.human_approval``, see :mod:`modelpilot.rollout.review`);
:func:`advance` decides timed-out approvals and moves a progressive rollout in progress
one step on. Whenever a candidate is promoted, the triggers' references restart from its
holdout score (:func:`promoted_reference`), so it is judged against what it scored, not
against the model it replaced.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelpilot.artifacts import ArtifactStore
from modelpilot.config import PilotConfig
from modelpilot.controller.monitor import validation_segments
from modelpilot.policy.triggers import TriggerState, reset_reference
from modelpilot.rollout import get_strategy
from modelpilot.store import ModelVersionRecord, Store


def promoted_reference(cfg: PilotConfig, store: Store, state: dict[str, Any], version: ModelVersionRecord,
                       score: float, now: datetime, numbers: dict[str, Any]) -> None:
    """Restart the trigger references in ``state`` from the promoted ``version``'s holdout ``score``.

    ``numbers`` are the gate's: when the replaced champion learned the concept before a located
    change (``champion_stale``), nothing is carried over — the level the old concept allowed
    is no bar for the new one, and the refreshes, not the performance trigger, bring the
    model up to the full window.
    """
    state["triggers"] = reset_reference(
        TriggerState.from_dict(state.get("triggers")), score, f"v{version.version} holdout at promotion",
        metric=cfg.primary_metric, now=now, triggers=cfg.triggers,
        segments=validation_segments(store, version, cfg.primary_metric,
                                     cfg.triggers.segment_performance_drop.min_samples),
        carry_over=not numbers.get("champion_stale", False),
    ).to_dict()


def release(cfg: PilotConfig, store: Store, artifacts: ArtifactStore, state: dict[str, Any],
            candidate: ModelVersionRecord, champion: int | None, job: dict[str, Any], verdict: dict[str, Any],
            now: datetime) -> tuple[str, int | None]:
    """Roll out a candidate that passed the gate, or park it for approval.

    Returns:
        The tick's action and the version promoted on this tick (None when the rollout is
        in progress, rolled back or awaiting approval).
    """
    reason = f"{job.get('reason', 'retrain')}; gate passed"
    if cfg.gates.human_approval:  # parked until a person decides (rollout/review.py)
        from modelpilot.rollout.review import request_review

        request_review(store, cfg.model.name, candidate.version, champion=champion, reason=reason,
                       numbers=verdict["numbers"])
        return f"v{candidate.version} awaiting approval", None
    decision = get_strategy(cfg.rollout.strategy, cfg=cfg, artifacts=artifacts).start(
        store, cfg.model.name, candidate.version, champion=champion, reason=reason, numbers=verdict["numbers"],
        now=now,
    )
    promoted = None
    if decision.status == "promoted":
        promoted = candidate.version
        promoted_reference(cfg, store, state, candidate, verdict["numbers"]["challenger"], now, verdict["numbers"])
    return f"rollout {decision.status}", promoted


def advance(cfg: PilotConfig, store: Store, artifacts: ArtifactStore, state: dict[str, Any],
            now: datetime, actions: list[str]) -> tuple[int | None, bool]:
    """Decide timed-out approvals and advance a progressive rollout in progress.

    What is done is appended to ``actions`` as it is done (the tick's actions).

    Returns:
        The version promoted on this tick if any, and whether a rollout is still undecided
        (no retrain starts meanwhile).
    """
    from modelpilot.rollout import review
    from modelpilot.rollout.state import active

    model = cfg.model.name
    actions += review.check_timeouts(store, cfg, model, now=now, artifacts=artifacts)
    current = active(store, model)
    if current is None:
        return None, False
    strategy = get_strategy(current.strategy, cfg=cfg, artifacts=artifacts)
    decision = strategy.advance(store, model, now=now)
    if decision is None:
        return None, False
    actions.append(f"rollout {decision.status}: {decision.reason}")
    promoted = None
    if decision.status == "promoted":
        promoted = current.candidate
        score = current.numbers.get("challenger")
        if score is not None:
            promoted_reference(cfg, store, state, store.get_version(model, current.candidate), score, now,
                               current.numbers)
    return promoted, decision.status == "in_progress"
