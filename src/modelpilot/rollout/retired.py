"""The retired champion's shadow: what the old model would have scored after a promotion.

Every promotion opens a record (state namespace :data:`NAMESPACE`, key ``"<model>:v<new>"``):
the new champion, the retired one and when. While it is open and younger than
``costs.counterfactual.period``, the server scores ``costs.counterfactual.fraction`` of the
champion's requests with the retired model too (a deterministic sample,
:func:`modelpilot.rollout.router.retired_mask`) and logs them with role ``retired``. The
controller measures, each tick, both models on the rows of that sample whose labels have
arrived (:mod:`modelpilot.controller.counterfactual`) and keeps the result in the record;
the record is frozen when the next promotion replaces its champion. The value side of ROI
(:mod:`modelpilot.policy.roi`) rests on these measurements.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelpilot.store import Store

NAMESPACE = "counterfactual"
ROLE = "retired"


def key(model: str, champion: int) -> str:
    return f"{model}:v{champion}"


def open_record(store: Store, model: str, *, champion: int, retired: int, now: datetime | None = None) -> None:
    """Start the retired champion's shadow for ``champion``'s promotion over ``retired``."""
    since = (now or datetime.now(UTC)).isoformat()
    store.put_state(NAMESPACE, key(model, champion), {
        "model": model, "champion": champion, "retired": retired, "since": since,
        "frozen_at": None, "measure": None, "served": 0,
    })


def records(store: Store, model: str) -> list[dict[str, Any]]:
    """Every record of ``model``, oldest promotion first."""
    prefix = f"{model}:v"
    found = [v for k, v in store.list_state(NAMESPACE).items() if k.startswith(prefix)]
    return sorted(found, key=lambda r: str(r.get("since")))


def get(store: Store, model: str, champion: int) -> dict[str, Any] | None:
    """The record of ``champion``'s promotion, or None."""
    return store.get_state(NAMESPACE, key(model, champion))


def shadowing(record: dict[str, Any] | None, champion: int, period: float, now: datetime) -> bool:
    """Whether the retired model should still score a share of ``champion``'s traffic."""
    if record is None or record.get("frozen_at") or int(record["champion"]) != champion:
        return False
    return now < datetime.fromisoformat(record["since"]) + timedelta(seconds=period)
