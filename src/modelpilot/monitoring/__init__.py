"""Monitoring statistics: reference profiles, drift methods, drift reports, performance.

>>> from modelpilot.monitoring import build_reference, drift_report, DRIFT_METHODS
>>> sorted(DRIFT_METHODS)
['auto', 'chi2', 'jensenshannon', 'ks', 'psi', 'wasserstein']
"""

from __future__ import annotations

from modelpilot.monitoring.drift import (
    DRIFT_METHODS,
    KS,
    PSI,
    AutoDrift,
    BaseDriftMethod,
    Chi2,
    DriftMethod,
    DriftResult,
    JensenShannon,
    Wasserstein,
    get_drift_method,
)
from modelpilot.monitoring.performance import (
    classification_metrics,
    estimate_performance,
    performance,
    regression_metrics,
)
from modelpilot.monitoring.reference import FeatureLists, build_reference, profile_frame
from modelpilot.monitoring.report import drift_report

__all__ = [
    "DRIFT_METHODS", "KS", "PSI", "AutoDrift", "BaseDriftMethod", "Chi2", "DriftMethod",
    "DriftResult", "FeatureLists", "JensenShannon", "Wasserstein", "build_reference",
    "classification_metrics", "drift_report", "estimate_performance", "get_drift_method",
    "performance", "profile_frame", "regression_metrics",
]
