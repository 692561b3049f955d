"""Human review and manual control: approve, reject, promote, roll back.

With ``gates.human_approval: true`` a candidate that passed the gate is parked: its
version status becomes ``awaiting_approval``, an approval is requested in the store, and
what the controller knew (champion, reason, gate numbers) is kept under the state
namespace ``review``. :func:`approve` records who, when and why, then starts the configured
rollout strategy; :func:`reject` records the same and marks the version ``rejected``.
:func:`check_timeouts` (called on every controller tick) decides approvals older than
``gates.approval_timeout`` as ``gates.on_approval_timeout`` says.

Every change of ``champion`` here is a compare-and-set against the champion read just
before, so an approval and a rollback racing on the same model end in one consistent
state: one of them wins, the other raises :class:`~modelpilot.errors.Conflict` and changes
nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelpilot.errors import Conflict, NotFound
from modelpilot.rollout import state as st
from modelpilot.rollout.base import RolloutDecision
from modelpilot.rollout.probe import check_servable
from modelpilot.rollout.replace import promote
from modelpilot.store import Store

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore
    from modelpilot.config import PilotConfig

NAMESPACE = "review"


def _key(model: str, version: int) -> str:
    return f"{model}/v{version}"


def request_review(
    store: Store, model: str, version: int, *, champion: int | None, reason: str,
    numbers: dict[str, Any] | None = None, actor: str = "controller",
) -> None:
    """Park ``version`` until a person approves or rejects it."""
    store.put_state(NAMESPACE, _key(model, version), {
        "model": model, "version": version, "champion": champion, "reason": reason, "numbers": numbers or {},
    })
    store.set_version_status(model, version, "awaiting_approval", actor=actor, reason=f"{reason}; waiting for a human approval")
    store.request_approval(model, version)


def approve(
    store: Store, cfg: PilotConfig, model: str, version: int, actor: str, comment: str | None = None,
    *, artifacts: ArtifactStore | None = None, now: datetime | None = None,
) -> RolloutDecision:
    """Approve a parked candidate and start the configured rollout strategy.

    Raises:
        ModelNotFound: no approval was requested for that version.
        Conflict: it was already decided, or the champion moved while approving (then the
            approval stands but nothing was promoted; promote it by hand if still wanted).
    """
    from modelpilot.rollout import get_strategy

    champion = store.get_alias(model, "champion")
    store.decide_approval(model, version, True, actor, comment)
    context = store.get_state(NAMESPACE, _key(model, version)) or {}
    store.set_version_status(model, version, "registered", actor=actor, reason=f"approved: {comment or ''}".strip())
    reason = f"approved by {actor}" + (f": {comment}" if comment else "")
    if context.get("reason"):
        reason = f"{context['reason']}; {reason}"
    strategy = get_strategy(cfg.rollout.strategy, cfg=cfg, artifacts=artifacts)
    try:
        return strategy.start(store, model, version, champion=champion, reason=reason,
                              numbers=dict(context.get("numbers") or {}), now=now, actor=actor)
    except Conflict:
        now_champion = store.get_alias(model, "champion")
        store.add_event(
            "approval_not_applied", model=model, subject=f"v{version}", actor=actor,
            reason=f"v{version} was approved but the champion moved to v{now_champion} meanwhile; nothing was promoted",
        )
        raise Conflict(
            f"the champion of {model!r} moved to v{now_champion} while v{version} was being approved: "
            f"the approval is recorded but nothing was promoted; run 'modelpilot promote {version}' if still wanted"
        ) from None


def reject(
    store: Store, model: str, version: int, actor: str, comment: str | None = None,
) -> None:
    """Reject a parked candidate: the approval is decided and the version marked ``rejected``.

    Raises:
        ModelNotFound: no approval was requested for that version.
        Conflict: it was already decided.
    """
    store.decide_approval(model, version, False, actor, comment)
    store.set_version_status(model, version, "rejected", actor=actor, reason=f"rejected by {actor}: {comment or ''}".strip())


def check_timeouts(
    store: Store, cfg: PilotConfig, model: str, *, now: datetime | None = None,
    artifacts: ArtifactStore | None = None,
) -> list[str]:
    """Decide the approvals of ``model`` pending for longer than ``gates.approval_timeout``.

    Returns:
        One line per decision taken (for the tick's actions).
    """
    timeout = cfg.gates.approval_timeout
    if timeout is None:
        return []
    now = now or datetime.now(UTC)
    done = []
    for approval in store.pending_approvals(model):
        if now - approval.requested_at < timedelta(seconds=timeout):
            continue
        comment = f"no decision within {timeout:g}s (gates.approval_timeout); gates.on_approval_timeout={cfg.gates.on_approval_timeout}"
        try:
            if cfg.gates.on_approval_timeout == "approve":
                approve(store, cfg, model, approval.version, "timeout", comment, artifacts=artifacts, now=now)
            else:
                reject(store, model, approval.version, "timeout", comment)
        except Conflict:
            continue  # decided by someone else meanwhile
        done.append(f"v{approval.version} {cfg.gates.on_approval_timeout.removesuffix('e')}ed on timeout")
    return done


def promote_manual(
    store: Store, model: str, version: int, actor: str, reason: str = "", *,
    artifacts: ArtifactStore | None, force: bool = False,
) -> dict[str, Any]:
    """Make ``version`` the champion now (ending any rollout in progress).

    The version must load through the model allowlist and answer a probe prediction
    (:func:`~modelpilot.rollout.probe.check_servable`), and a version that was rejected (by
    a gate or a person) needs ``force``; a forced promotion says so, with the actor, in the
    ``promoted`` event.

    Args:
        artifacts: where the model files are (``None`` only where no server will load it,
            e.g. a store without artifacts; then the probe is skipped).
        force: promote a rejected version anyway.

    Raises:
        ModelNotFound: no such version.
        VersionNotServable: the version's file is refused or does not answer the probe.
        Conflict: the version was rejected and ``force`` is not set, or the champion moved
            while promoting (re-read and retry).
    """
    record = store.get_version(model, version)
    champion = store.get_alias(model, "champion")
    if champion == version:
        raise Conflict(f"v{version} of {model!r} is already the champion; nothing to promote")
    numbers: dict[str, Any] = {"manual": True}
    if record.status == "rejected":
        why_rejected = _rejection(store, model, version)
        if not force:
            raise Conflict(
                f"v{version} of {model!r} was rejected ({why_rejected}); promote it anyway with --force "
                '(HTTP: "force": true) — the promotion is recorded with your name')
        numbers.update(forced=True, rejected_because=why_rejected)
    if artifacts is not None:
        check_servable(artifacts, record)
    why = f"manual promotion by {actor}" + (f": {reason}" if reason else "")
    if numbers.get("forced"):
        why = f"forced {why}, over the rejection ({numbers['rejected_because']})"
    _end_rollout(store, model, "superseded", why)
    promote(store, model, version, champion=champion, actor=actor, reason=why, numbers=numbers)
    if record.status in ("rejected", "awaiting_approval"):
        store.set_version_status(model, version, "registered", actor=actor, reason=why)
    return {"model": model, "champion": version, "previous": champion}


def _rejection(store: Store, model: str, version: int) -> str:
    """Why ``version`` was rejected, from the newest event that rejected it."""
    for event in store.events(model=model, limit=500):
        rejecting = event.kind in ("gate_rejected", "thresholds_failed", "approval_decided") or (
            event.kind == "version_status" and event.numbers.get("to") == "rejected")
        mine = event.subject in (f"v{version}", f"{model}:v{version}") or event.numbers.get("version") == version
        if rejecting and mine:
            return f"{event.kind.replace('_', ' ')}: {event.reason}" if event.reason else event.kind.replace("_", " ")
    return "status rejected"


def rollback(store: Store, model: str, actor: str, reason: str = "") -> dict[str, Any]:
    """Stop the rollout in progress, or else move ``champion`` back to the previous champion.

    Returns:
        ``{"model", "action": "rollout_stopped" | "champion_restored", "champion", "previous"}``.

    Raises:
        NotFound: nothing to roll back (no rollout and no earlier champion).
        Conflict: the champion or the rollout changed meanwhile.
    """
    why = f"rollback by {actor}" + (f": {reason}" if reason else "")
    state, revision = st.load(store, model)
    if state is not None and state.active:
        from modelpilot.rollout import get_strategy

        strategy: Any = get_strategy(state.strategy)
        strategy.conclude(store, state, revision, "rolled_back", why, {"manual": True},
                          datetime.now(UTC), actor=actor)
        return {"model": model, "action": "rollout_stopped", "champion": state.champion, "previous": state.candidate}
    current = store.get_alias(model, "champion")
    if current is None:
        raise NotFound(f"model {model!r} has no champion; nothing to roll back")
    previous = next(
        (e.numbers.get("from") for e in store.alias_history(model, "champion") if e.numbers.get("to") == current),
        None,
    )
    if previous is None:
        raise NotFound(f"v{current} is the first champion of {model!r}; there is no earlier one to roll back to")
    store.set_alias(model, "champion", int(previous), actor=actor, reason=why,
                    numbers={"rollback": True, "from_version": current, "to_version": previous},
                    expected_current=current)
    store.add_event("rolled_back", model=model, subject=f"v{current}", actor=actor,
                    reason=f"{why}; v{previous} serves again", numbers={"from_version": current, "to_version": previous})
    return {"model": model, "action": "champion_restored", "champion": int(previous), "previous": current}


def _end_rollout(store: Store, model: str, status: str, reason: str) -> None:
    state, revision = st.load(store, model)
    if state is not None and state.active:
        st.save(store, state.decided(status, reason), revision)
        store.add_event(f"rollout_{status}", model=model, subject=f"v{state.candidate}", actor="system", reason=reason)


__all__ = ["approve", "check_timeouts", "promote_manual", "reject", "request_review", "rollback"]
