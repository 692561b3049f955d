"""A person's actions on the champion over a real store: manual promotion, rollback, rejection.

A manual promotion ends a rollout in progress (``superseded``) and clears a parked version's
status; promoting the champion itself is refused. A rollback stops a rollout in progress
(the champion never moved), or else restores the champion before the current one, and says
so when there is none. A rejected approval cannot be approved afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelpilot.errors import Conflict, NotFound
from modelpilot.rollout import get_strategy, promote, review
from modelpilot.rollout import state as st
from modelpilot.rollout.progressive import CHALLENGER_ALIAS

MODEL = "churn"


def _kinds(renv: Any, *wanted: str) -> list[str]:
    return [e.kind for e in reversed(renv.store.events(model=MODEL, limit=1000)) if e.kind in wanted]


def test_a_manual_promotion_ends_the_rollout_in_progress_and_clears_a_parked_status(renv: Any) -> None:
    get_strategy("canary", cfg=renv.cfg, artifacts=renv.artifacts).start(
        renv.store, MODEL, renv.worse, champion=renv.champion, reason="retrain", numbers={})
    review.request_review(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain")
    assert renv.store.get_version(MODEL, renv.healthy).status == "awaiting_approval"

    out = review.promote_manual(renv.store, MODEL, renv.healthy, "alice", "hotfix", artifacts=renv.artifacts)

    assert out == {"model": MODEL, "champion": renv.healthy, "previous": renv.champion}
    assert renv.store.get_alias(MODEL, "champion") == renv.healthy
    assert st.active(renv.store, MODEL) is None  # the canary of the other candidate is over
    assert _kinds(renv, "rollout_started", "rollout_superseded", "promoted")[-2:] == ["rollout_superseded", "promoted"]
    assert renv.store.get_version(MODEL, renv.healthy).status == "registered"
    with pytest.raises(Conflict, match=f"v{renv.healthy} of 'churn' is already the champion"):
        review.promote_manual(renv.store, MODEL, renv.healthy, "alice", artifacts=renv.artifacts)


def test_a_rollback_restores_the_previous_champion_and_not_before_the_first(renv: Any) -> None:
    with pytest.raises(NotFound, match=f"v{renv.champion} is the first champion of 'churn'"):
        review.rollback(renv.store, MODEL, "bob")
    review.promote_manual(renv.store, MODEL, renv.healthy, "alice", artifacts=renv.artifacts)

    out = review.rollback(renv.store, MODEL, "bob", "worse in production")

    assert out == {"model": MODEL, "action": "champion_restored", "champion": renv.champion, "previous": renv.healthy}
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    (event,) = [e for e in renv.store.events(model=MODEL, kind="rolled_back")]
    assert event.reason == f"rollback by bob: worse in production; v{renv.champion} serves again"
    # the champion before the current one is the one just rolled back from: a second rollback undoes it
    assert review.rollback(renv.store, MODEL, "bob")["champion"] == renv.healthy


def test_a_rollback_during_a_rollout_stops_it_and_leaves_the_champion(renv: Any) -> None:
    get_strategy("ab", cfg=renv.cfg, artifacts=renv.artifacts).start(
        renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain", numbers={})

    out = review.rollback(renv.store, MODEL, "bob")

    assert out == {"model": MODEL, "action": "rollout_stopped", "champion": renv.champion, "previous": renv.healthy}
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    assert renv.store.get_alias(MODEL, CHALLENGER_ALIAS) is None
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"
    assert st.active(renv.store, MODEL) is None


def test_nothing_to_roll_back_without_a_champion(renv: Any) -> None:
    renv.store.delete_alias(MODEL, "champion", actor="ops", reason="retired")
    with pytest.raises(NotFound, match="has no champion; nothing to roll back"):
        review.rollback(renv.store, MODEL, "bob")


def test_a_rejected_approval_stays_rejected(renv: Any) -> None:
    review.request_review(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain")
    review.reject(renv.store, MODEL, renv.healthy, "carol", "labels look odd")
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"
    assert renv.store.get_approval(MODEL, renv.healthy).status == "rejected"
    with pytest.raises(Conflict):
        review.approve(renv.store, renv.cfg, MODEL, renv.healthy, "dave", artifacts=renv.artifacts)
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    # no timeout configured: pending approvals are left to people
    review.request_review(renv.store, MODEL, renv.worse, champion=renv.champion, reason="retrain")
    assert review.check_timeouts(renv.store, renv.cfg, MODEL) == []
    assert renv.store.get_approval(MODEL, renv.worse).status == "pending"


def test_a_rollback_without_a_reason_says_who_and_records_both_versions(renv: Any) -> None:
    review.promote_manual(renv.store, MODEL, renv.healthy, "alice", artifacts=renv.artifacts)

    review.rollback(renv.store, MODEL, "bob")

    (event,) = renv.store.events(model=MODEL, kind="rolled_back")
    assert (event.subject, event.actor) == (f"v{renv.healthy}", "bob")
    assert event.reason == f"rollback by bob; v{renv.champion} serves again"
    assert event.numbers == {"from_version": renv.healthy, "to_version": renv.champion}
    moved = renv.store.alias_history(MODEL, "champion")[0]
    assert moved.actor == "bob" and moved.reason == "rollback by bob"
    assert moved.numbers["rollback"] is True
    assert (moved.numbers["from_version"], moved.numbers["to_version"]) == (renv.healthy, renv.champion)


def _reject(renv: Any, version: int, why: str) -> None:
    renv.store.set_version_status(MODEL, version, "rejected", actor="controller", reason=why)


@pytest.mark.parametrize("rejected_by", ["gate_rejected", "thresholds_failed", "approval_decided"])
def test_promoting_a_rejected_version_needs_force_and_names_the_newest_rejection(renv: Any, rejected_by: str) -> None:
    _reject(renv, renv.worse, "marked rejected")
    renv.store.add_event(rejected_by, model=MODEL, subject=f"v{renv.worse}", actor="controller",
                         reason="accuracy fell short of the champion's")
    renv.store.add_event(rejected_by, model=MODEL, subject=f"v{renv.healthy}", actor="controller",
                         reason="another version's rejection")
    why = f"{rejected_by.replace('_', ' ')}: accuracy fell short of the champion's"

    with pytest.raises(Conflict) as refused:
        review.promote_manual(renv.store, MODEL, renv.worse, "alice", artifacts=renv.artifacts)
    assert str(refused.value) == (
        f"v{renv.worse} of 'churn' was rejected ({why}); promote it anyway with --force "
        '(HTTP: "force": true) — the promotion is recorded with your name')
    assert renv.store.get_alias(MODEL, "champion") == renv.champion

    review.promote_manual(renv.store, MODEL, renv.worse, "alice", "on purpose", artifacts=renv.artifacts, force=True)
    (event,) = renv.store.events(model=MODEL, kind="promoted")
    assert event.reason == f"forced manual promotion by alice: on purpose, over the rejection ({why})"
    assert event.numbers["forced"] is True and event.numbers["rejected_because"] == why
    assert event.numbers["manual"] is True
    assert renv.store.get_version(MODEL, renv.worse).status == "registered"


def test_a_rejection_known_only_from_the_version_status_is_named_by_it(renv: Any) -> None:
    _reject(renv, renv.worse, "gate: worse than v1")
    with pytest.raises(Conflict, match=r"was rejected \(version status: gate: worse than v1\)"):
        review.promote_manual(renv.store, MODEL, renv.worse, "alice", artifacts=renv.artifacts)
    # a status change that is not a rejection says nothing about why it was rejected
    renv.store.set_version_status(MODEL, renv.healthy, "awaiting_approval", actor="controller", reason="parked")
    renv.store.set_version_status(MODEL, renv.healthy, "registered", actor="controller", reason="approved")
    renv.store.set_version_status(MODEL, renv.healthy, "rejected", actor="controller", reason="")
    with pytest.raises(Conflict, match=r"was rejected \(version status\);"):
        review.promote_manual(renv.store, MODEL, renv.healthy, "alice", artifacts=renv.artifacts)


def test_an_approval_whose_champion_moved_meanwhile_is_recorded_but_promotes_nothing(
        renv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    renv.configure({"strategy": "replace"})
    review.request_review(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="retrain")
    decide = renv.store.decide_approval

    def decide_while_an_operator_moves_the_champion(*args: Any, **kwargs: Any) -> Any:
        out = decide(*args, **kwargs)
        renv.store.set_alias(MODEL, "champion", renv.worse, actor="ops", reason="moved by hand meanwhile")
        return out

    monkeypatch.setattr(renv.store, "decide_approval", decide_while_an_operator_moves_the_champion)
    with pytest.raises(Conflict) as raised:
        review.approve(renv.store, renv.cfg, MODEL, renv.healthy, "dave", "looks good", artifacts=renv.artifacts)
    assert str(raised.value) == (
        f"the champion of 'churn' moved to v{renv.worse} while v{renv.healthy} was being approved: the approval is "
        f"recorded but nothing was promoted; run 'modelpilot promote {renv.healthy}' if still wanted")
    (event,) = renv.store.events(model=MODEL, kind="approval_not_applied")
    assert (event.subject, event.actor) == (f"v{renv.healthy}", "dave")
    assert event.reason == (f"v{renv.healthy} was approved but the champion moved to v{renv.worse} meanwhile; "
                            "nothing was promoted")
    assert renv.store.get_alias(MODEL, "champion") == renv.worse
    assert renv.store.get_approval(MODEL, renv.healthy).status == "approved"


def test_a_promotion_without_an_actor_is_the_controllers(renv: Any) -> None:
    promote(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="gate passed", numbers={"delta": 0.1})
    (event,) = renv.store.events(model=MODEL, kind="promoted")
    assert (event.actor, event.subject, event.reason) == ("controller", f"v{renv.healthy}", "gate passed")
    assert event.numbers == {"delta": 0.1, "from_version": renv.champion, "to_version": renv.healthy}
    assert renv.store.alias_history(MODEL, "champion")[0].actor == "controller"
