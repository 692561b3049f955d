"""Which version answers a request, and which one only shadows it: a pure function.

The routing key (the request id, or the configured ``rollout.key_field`` such as a
customer id) and the rollout's id are hashed with BLAKE2b into a number in [0, 1); keys
below the candidate's traffic share go to the candidate. Nothing else is read — no
randomness, no clock, no process state — so every server replica on one store sends the
same key to the same version, and a key keeps its arm for the whole rollout (sticky).
Raising a canary's share from 5 % to 25 % keeps the first 5 % of keys on the candidate and
adds more: buckets only ever move from champion to candidate.

>>> state = RolloutState(model="m", id="r1", strategy="ab", candidate=2, champion=1,
...                      started_at="", log_since="", share=0.5)
>>> route("customer-42", state) == route("customer-42", state)
True
>>> route("k", None, champion=1)
Route(primary_version=1, shadow_version=None, arm='champion')
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from modelpilot.rollout.state import RolloutState

_SCALE = float(2**64)


class Route(NamedTuple):
    """The version that answers, the one that scores a copy (or None), and the arm name."""

    primary_version: int | None
    shadow_version: int | None
    arm: str  # "champion" | "challenger"


def bucket(key: str, salt: str) -> float:
    """A uniform number in [0, 1) from ``key`` and ``salt`` (stable across processes)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=salt.encode()[:16]).digest()
    return int.from_bytes(digest, "big") / _SCALE


def route(key: str, state: RolloutState | None, *, champion: int | None = None) -> Route:
    """Route one request.

    Args:
        key: the routing key (request id or the configured key field's value).
        state: the rollout in progress, or None.
        champion: the champion to use when there is no rollout.

    Returns:
        The :class:`Route`.
    """
    if state is None or not state.active:
        return Route(champion, None, "champion")
    if state.shadow:
        return Route(state.champion, state.candidate, "champion")
    if state.share > 0 and bucket(key, state.id) < state.share:
        return Route(state.candidate, None, "challenger")
    return Route(state.champion, None, "champion")


def challenger_mask(keys: Sequence[str], state: RolloutState | None) -> np.ndarray:
    """``route(k, state).arm == "challenger"`` for each key, as a boolean array."""
    if state is None or not state.active or state.shadow or state.share <= 0:
        return np.zeros(len(keys), dtype=bool)
    if state.share >= 1:
        return np.ones(len(keys), dtype=bool)
    salt = state.id
    return np.fromiter((bucket(k, salt) < state.share for k in keys), dtype=bool, count=len(keys))


def retired_mask(ids: Sequence[str] | np.ndarray, champion: int, fraction: float) -> np.ndarray:
    """Which requests the retired champion also scores in shadow after ``champion``'s promotion.

    A deterministic sample of ``fraction`` of the request ids (salted by the champion, so
    each promotion samples afresh): every replica, and the backtest, pick the same rows.
    """
    if fraction <= 0 or not len(ids):
        return np.zeros(len(ids), dtype=bool)
    if fraction >= 1:
        return np.ones(len(ids), dtype=bool)
    salt = f"retired-v{champion}"
    return np.fromiter((bucket(str(k), salt) < fraction for k in ids), dtype=bool, count=len(ids))
