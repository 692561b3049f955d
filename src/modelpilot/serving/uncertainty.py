"""``POST /predict?intervals=true``: conformal intervals or prediction sets beside the predictions.

A version's split-conformal calibration (``conformal`` in its reference profile, made from
its validation rows at training: :mod:`modelpilot.monitoring.conformal`) is read once and
kept. A regressor's answer gains ``intervals`` (``[low, high]`` per row, ``ŷ ∓ q``), a
classifier's ``prediction_sets`` (the classes whose probability is at least ``1 − q``, in
the model's class order); both gain ``coverage``, the share of rows the intervals or sets are
promised to hold the truth for (``1 − monitoring.conformal_alpha``), as long as the traffic
looks like the validation rows: the monitoring pass measures the real coverage on labels.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from modelpilot.artifacts import ArtifactStore
from modelpilot.errors import ModelpilotError, RequestError
from modelpilot.monitoring.conformal import intervals, prediction_sets
from modelpilot.serving.cache import LoadedModel, Prediction
from modelpilot.serving.explain import reference_of


class Uncertainty:
    """Intervals and prediction sets of loaded versions; thread-safe.

    Args:
        artifacts: where the reference profiles are.
        error: raised for a version without calibration (the server's 422 by default).
        skip: how the caller does without, for that error's message.
    """

    def __init__(self, artifacts: ArtifactStore, *, error: type[ModelpilotError] = RequestError,
                 skip: str = "ask without intervals=true") -> None:
        self.artifacts = artifacts
        self._error, self._skip = error, skip
        self._conformal: dict[tuple[str, int], dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    def conformal(self, model: LoadedModel) -> dict[str, Any]:
        """The version's calibration.

        Raises:
            ModelpilotError: the version has none (``error``: HTTP 422 by default).
        """
        key = (model.name, model.version)
        with self._lock:
            if key not in self._conformal:
                self._conformal[key] = reference_of(self.artifacts, model).get("conformal")
            found = self._conformal[key]
        if found is None:
            raise self._error(
                f"v{model.version} of {model.name!r} has no conformal calibration in its reference profile "
                f"(it is made from the validation rows when a version is trained): retrain it, or {self._skip}"
            )
        return found

    def answer(self, model: LoadedModel, out: Prediction) -> dict[str, Any]:
        """``{"intervals" | "prediction_sets", "coverage"}`` for the rows of ``out``."""
        conf = self.conformal(model)
        extra: dict[str, Any] = {"coverage": 1.0 - float(conf["alpha"])}
        if conf["task"] == "regression":
            low, high = intervals(conf, out.labels)
            extra["intervals"] = np.column_stack([low, high])
        elif out.probabilities is None or model.classes is None:
            raise self._error(f"v{model.version} of {model.name!r} answered without class probabilities, which "
                              f"its prediction sets are made of: {self._skip}")
        else:
            classes = model.classes.tolist()
            members = prediction_sets(conf, out.probabilities)
            extra["prediction_sets"] = [[classes[k] for k in np.flatnonzero(row)] for row in members]
        return extra
