"""Can a version serve? Load it through the model allowlist and answer a probe prediction.

``promote`` moves the champion alias; servers then load the new version. A version that
their loader refuses (a file outside the allowlist, a corrupt file) would leave every server
on the old model while the store says otherwise, and a file that loads as something other
than a model would answer every request with a 500. So a manual promotion first does what a
server will do: load the file and predict a few rows built from the version's signature
(ordinary, missing and extreme numbers; known, missing and unknown categories) and check
the answer's shape, values and classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import ArtifactStore, load_model
from modelpilot.errors import ModelpilotError, VersionNotServable

_NUMERIC = {"float", "int", "number"}


def probe_frame(signature: list[dict[str, Any]]) -> pd.DataFrame:
    """Four rows with the signature's columns: ordinary, missing, extreme and unknown values."""
    cols: dict[str, Any] = {}
    for col in signature:
        name, kind = str(col["name"]), col.get("type")
        if kind in _NUMERIC:
            cols[name] = np.array([0.0, np.nan, -1e3, 1e6])
        elif kind == "bool":
            cols[name] = np.array([True, None, False, True], dtype=object)
        else:
            cols[name] = np.array(["a", None, "__unknown__", "b"], dtype=object)
    return pd.DataFrame(cols)


def check_servable(artifacts: ArtifactStore, record: Any) -> None:
    """Raise unless ``record``'s model file loads and predicts the probe rows sensibly.

    Args:
        artifacts: where the model file is.
        record: the version (its artifact key, signature, task and classes).

    Raises:
        VersionNotServable: the file is refused or corrupt, or it is not a model of the
            version's task (no answer, a wrong number of answers, unknown classes,
            probabilities that are not probabilities, non-finite regression output).
    """
    what = f"v{record.version} of {record.model!r}"
    try:
        model = load_model(artifacts, record.artifact_key)
    except ModelpilotError as exc:
        raise VersionNotServable(f"{what} cannot be loaded: {exc}") from None
    X = probe_frame(list(record.signature))
    try:
        predictions = np.asarray(model.predict(X))
        proba = np.asarray(model.predict_proba(X)) if record.task == "classification" and hasattr(
            model, "predict_proba") else None
    except Exception as exc:  # whatever the object is, it did not answer like a model
        raise VersionNotServable(
            f"{what} does not answer a probe prediction ({type(exc).__name__}: {exc}); it is not a "
            "servable model of its signature") from None
    problem = _problem(predictions, proba, record, len(X))
    if problem:
        raise VersionNotServable(f"{what} does not answer a probe prediction sensibly: {problem}")


def _problem(predictions: np.ndarray, proba: np.ndarray | None, record: Any, n: int) -> str | None:
    if predictions.shape[:1] != (n,):
        return f"{n} rows gave predictions of shape {predictions.shape}"
    if record.task == "classification":
        classes = {str(c) for c in (record.classes or [])}
        unknown = sorted({str(p) for p in predictions} - classes) if classes else []
        if unknown:
            return f"predicted {unknown[:3]}, not classes of the version ({sorted(classes)})"
        if proba is not None:
            if proba.shape != (n, len(classes) or proba.shape[1]):
                return f"probabilities of shape {proba.shape} for {n} rows and {len(classes)} classes"
            if not np.isfinite(proba).all() or not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
                return "probabilities that are not finite or do not sum to 1"
        return None
    try:
        values = predictions.astype(float)
    except (TypeError, ValueError):
        return f"non-numeric regression output ({predictions[:2].tolist()})"
    return None if np.isfinite(values).all() else "non-finite regression output"
