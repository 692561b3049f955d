"""Approve or reject a version awaiting review, on behalf of the UI's operator.

Goes through :mod:`modelpilot.rollout.review` (what the CLI's ``approve``/``reject`` use):
an approval starts the configured rollout strategy. The fallback below (record the
decision, then promote with a compare-and-set on the champion) only serves an install
without that module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelpilot.config import PilotConfig
from modelpilot.store import Store

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore


def _review_module() -> Any:
    try:
        return importlib.import_module("modelpilot.rollout.review")
    except ModuleNotFoundError as exc:
        if exc.name not in ("modelpilot.rollout.review",):
            raise
        return None


def decide(store: Store, cfg: PilotConfig, model: str, version: int, *, approved: bool, actor: str,
           comment: str | None, artifacts: ArtifactStore | None = None) -> None:
    """Record the decision on ``model`` v``version`` and, when approved, roll it out.

    Raises:
        ModelNotFound: no approval was requested for that version.
        Conflict: it was already decided, or the champion moved meanwhile.
    """
    review = _review_module()
    if review is not None:
        if approved:
            review.approve(store, cfg, model, version, actor, comment, artifacts=artifacts)
        else:
            review.reject(store, model, version, actor, comment)
        return
    from modelpilot.rollout import promote

    store.decide_approval(model, version, approved, actor, comment)
    if not approved:
        store.set_version_status(model, version, "rejected", actor=actor, reason=comment or "rejected in the dashboard")
        return
    store.set_version_status(model, version, "registered", actor=actor, reason=comment or "approved in the dashboard")
    champion = store.get_alias(model, "champion")
    promote(store, model, version, champion=champion, actor=actor,
            reason=f"approved by {actor} in the dashboard" + (f": {comment}" if comment else ""))
