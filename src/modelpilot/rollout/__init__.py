"""How a candidate that passed the gate reaches traffic.

A strategy is a small object selected by ``rollout.strategy`` from :data:`STRATEGIES`:

* ``replace`` moves the ``champion`` alias at once; servers hot-swap on their next refresh;
* ``shadow`` lets the challenger score a copy of the traffic, then compares on labels;
* ``ab`` splits routing keys and decides with a statistical test;
* ``canary`` raises the challenger's share step by step, health-checked, with automatic
  rollback.

Routing is :func:`~modelpilot.rollout.router.route`, a pure function of the request's key
and the rollout state in the store. Human review and manual promote/rollback are in
:mod:`modelpilot.rollout.review`.
"""

from __future__ import annotations

from typing import Any

from modelpilot.rollout.ab import ABStrategy
from modelpilot.rollout.base import RolloutDecision, RolloutStrategy
from modelpilot.rollout.canary import CanaryStrategy
from modelpilot.rollout.replace import ReplaceStrategy, promote
from modelpilot.rollout.router import Route, route
from modelpilot.rollout.shadow import ShadowStrategy
from modelpilot.rollout.state import RolloutState

STRATEGIES: dict[str, type[RolloutStrategy]] = {
    "replace": ReplaceStrategy,
    "shadow": ShadowStrategy,
    "ab": ABStrategy,
    "canary": CanaryStrategy,
}


def get_strategy(name: str, *, cfg: Any = None, artifacts: Any = None) -> RolloutStrategy:
    """The strategy registered under ``name``.

    Args:
        name: a key of :data:`STRATEGIES`.
        cfg: the configuration (progressive strategies read ``rollout`` and ``gates``).
        artifacts: the artifact store holding the prediction log (progressive strategies).

    Raises:
        ConfigError: no strategy has that name.
    """
    from modelpilot.errors import ConfigError

    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"rollout.strategy: unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}"
        ) from None
    return cls(cfg=cfg, artifacts=artifacts)  # type: ignore[call-arg]


__all__ = [
    "STRATEGIES", "ABStrategy", "CanaryStrategy", "ReplaceStrategy", "RolloutDecision", "RolloutState",
    "RolloutStrategy", "Route", "ShadowStrategy", "get_strategy", "promote", "route",
]
