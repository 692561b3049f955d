"""Drift methods and their registry.

``DRIFT_METHODS`` maps the names accepted by ``monitoring.drift_method`` in pilot.yaml to
the method classes; build one with :func:`get_drift_method`.
"""

from __future__ import annotations

from typing import Any

from modelpilot.errors import ConfigError
from modelpilot.monitoring.drift.auto import AutoDrift, adjust_p_values
from modelpilot.monitoring.drift.base import BaseDriftMethod, DriftMethod, DriftResult
from modelpilot.monitoring.drift.chi2 import Chi2
from modelpilot.monitoring.drift.jensenshannon import JensenShannon
from modelpilot.monitoring.drift.ks import KS
from modelpilot.monitoring.drift.psi import PSI
from modelpilot.monitoring.drift.wasserstein import Wasserstein

DRIFT_METHODS: dict[str, type[BaseDriftMethod]] = {
    cls.name: cls for cls in (PSI, KS, Chi2, JensenShannon, Wasserstein, AutoDrift)
}


def get_drift_method(name: str, **params: Any) -> BaseDriftMethod:
    """A drift method by registry name, built with keyword ``params`` (e.g. ``threshold``).

    Raises:
        ConfigError: the name is not registered.
    """
    try:
        cls = DRIFT_METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown drift method {name!r}; set monitoring.drift_method to one of "
            f"{sorted(DRIFT_METHODS)}"
        ) from None
    return cls(**params)


# each registered method satisfies the protocol (checked by mypy here, and by the kit)
_: type[DriftMethod] = PSI

__all__ = [
    "DRIFT_METHODS", "AutoDrift", "BaseDriftMethod", "Chi2", "DriftMethod", "DriftResult",
    "JensenShannon", "KS", "PSI", "Wasserstein", "adjust_p_values", "get_drift_method",
]
