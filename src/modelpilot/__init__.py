"""modelpilot: an autopilot for machine-learning models in production.

>>> from modelpilot import Pilot, PilotConfig   # doctest: +SKIP
>>> pilot = Pilot.from_config("pilot.yaml")       # doctest: +SKIP

``Pilot`` and ``PilotConfig`` are imported on first use, so ``import modelpilot`` (and the
CLI's start) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ModelpilotError", "Pilot", "PilotConfig", "__version__"]

if TYPE_CHECKING:
    from modelpilot.config import PilotConfig
    from modelpilot.errors import ModelpilotError
    from modelpilot.pilot import Pilot


def __getattr__(name: str) -> Any:
    if name == "Pilot":
        from modelpilot.pilot import Pilot

        return Pilot
    if name == "PilotConfig":
        from modelpilot.config import PilotConfig

        return PilotConfig
    if name == "ModelpilotError":
        from modelpilot.errors import ModelpilotError

        return ModelpilotError
    raise AttributeError(f"module 'modelpilot' has no attribute {name!r}")
