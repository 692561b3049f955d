"""How a candidate that passed the gate reaches traffic.

A strategy is a small object selected by ``rollout.strategy`` from :data:`STRATEGIES`.
``replace`` moves the ``champion`` alias at once; servers hot-swap on their next refresh.
"""

from __future__ import annotations

from modelpilot.rollout.base import RolloutDecision, RolloutStrategy
from modelpilot.rollout.replace import ReplaceStrategy, promote

STRATEGIES: dict[str, type[RolloutStrategy]] = {"replace": ReplaceStrategy}


def get_strategy(name: str) -> RolloutStrategy:
    """The strategy registered under ``name``.

    Raises:
        ConfigError: no strategy has that name.
    """
    from modelpilot.errors import ConfigError

    try:
        return STRATEGIES[name]()
    except KeyError:
        raise ConfigError(
            f"rollout.strategy: unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}"
        ) from None


__all__ = ["STRATEGIES", "ReplaceStrategy", "RolloutDecision", "RolloutStrategy", "get_strategy", "promote"]
