"""Jensen–Shannon distance between reference and current distributions."""

from __future__ import annotations

from typing import ClassVar

from modelpilot.monitoring.drift.base import BucketDistanceMethod, js_distance


class JensenShannon(BucketDistanceMethod):
    """Jensen–Shannon distance (base 2, in [0, 1]) over categories (top-k + ``__other__`` +
    ``__missing__``) or, for numeric columns, the reference quantile bins + missing.

    Default threshold 0.07: moving 10 percentage points of share between two categories
    scores 0.085–0.18 whatever their sizes, a 5-point move about 0.04–0.06, and sampling
    noise on windows of thousands of rows stays below 0.02. No p-value.

    Args:
        threshold: drifted when the distance >= threshold (default 0.07).
        bins: quantile bins per numeric column used by ``fit``.
    """

    name: ClassVar[str] = "jensenshannon"
    default_threshold: ClassVar[float] = 0.07
    distance = staticmethod(js_distance)
