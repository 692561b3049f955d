"""Population stability index over the reference quantile bins (numeric) or categories."""

from __future__ import annotations

from typing import ClassVar

from modelpilot.monitoring.drift.base import BucketDistanceMethod, psi


class PSI(BucketDistanceMethod):
    """PSI = Σ (cur − ref)·ln(cur/ref) over the reference's quantile bins plus a missing bucket
    (numeric) or its top categories + ``__other__`` + ``__missing__`` (categorical).

    Shares are floored at 1e-4 so empty bins and unseen categories stay finite. Default
    threshold 0.1 (the credit-scoring rule of thumb: < 0.1 stable, 0.1–0.25 moderate,
    > 0.25 major shift). No p-value: PSI is an effect size and does not grow with n.

    Args:
        threshold: drifted when PSI >= threshold (default 0.1).
        bins: quantile bins per numeric column used by ``fit``.
    """

    name: ClassVar[str] = "psi"
    default_threshold: ClassVar[float] = 0.1
    distance = staticmethod(psi)
