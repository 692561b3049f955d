"""``POST /predict?explain=true``: per-prediction contributions next to the predictions.

The baseline of each version (its reference profile's medians and most frequent
categories, :func:`modelpilot.monitoring.explain.baseline_row`) is read once and kept;
the explanation runs on the version's scikit-learn pipeline whatever runtime serves it.
"""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd

from modelpilot.artifacts import ArtifactStore, get_json
from modelpilot.monitoring.explain import Explanation, baseline_row, explain
from modelpilot.serving.cache import LoadedModel
from modelpilot.serving.fastpath import nulls_as_nan

TRUE = ("1", "true", "yes")


def reference_of(artifacts: ArtifactStore, model: LoadedModel) -> dict[str, Any]:
    """The version's reference profile (an empty one when it has none)."""
    ref_key = model.record.reference_key
    return get_json(artifacts, ref_key) if ref_key else {"columns": {}}


class Explainer:
    """Explains predictions of loaded versions; thread-safe (baselines behind a lock)."""

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts
        self._baselines: dict[tuple[str, int], pd.DataFrame] = {}
        self._lock = threading.Lock()

    def baseline(self, model: LoadedModel) -> pd.DataFrame:
        key = (model.name, model.version)
        with self._lock:
            if key not in self._baselines:
                self._baselines[key] = baseline_row(reference_of(self.artifacts, model), list(model.schema.names))
            return self._baselines[key]

    def explanation(self, model: LoadedModel, columns: dict[str, Any]) -> Explanation:
        """The contributions of each feature to each row of ``columns`` (one array per feature)."""
        names = list(model.schema.names)
        frame = pd.DataFrame(nulls_as_nan(columns), copy=False)[names]
        classes = None if model.classes is None else list(model.classes)
        return explain(model.pipeline, frame, self.baseline(model), classes=classes)

    def rows(self, model: LoadedModel, columns: dict[str, Any]) -> list[dict[str, Any]]:
        """One ``{"base_value", "output", "contributions"}`` per row of ``columns``."""
        return self.explanation(model, columns).rows()
