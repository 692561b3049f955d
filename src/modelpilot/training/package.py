"""Package a trained model: the skops bundle, the reference profile, optional ONNX.

The bundle is the fitted :func:`~modelpilot.training.preprocess.build_pipeline`
pipeline saved with :func:`modelpilot.artifacts.save_model` (skops, never pickle). The
reference profile — the training features plus the model's scores and predictions on
the validation rows (out-of-sample, like live traffic) — is what monitoring compares
live traffic with; it is stored as a JSON artifact next to the model.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import ArtifactStore, put_json, save_model
from modelpilot.data import FeatureSpec
from modelpilot.errors import DataError
from modelpilot.monitoring.calibration import fit_calibration
from modelpilot.monitoring.conformal import fit_conformal
from modelpilot.monitoring.errormodel import fit_error_model
from modelpilot.monitoring.multivariate import fit_joint_profile
from modelpilot.monitoring.reference import build_reference

log = logging.getLogger(__name__)


def save_bundle(artifacts: ArtifactStore, pipeline: Pipeline) -> str:
    """Store the fitted pipeline; returns its artifact key (``...skops``).

    Raises:
        ArtifactError: the pipeline cannot be serialised by skops.
    """
    return save_model(artifacts, pipeline)


def save_reference(
    artifacts: ArtifactStore,
    X_train: pd.DataFrame,
    features: FeatureSpec,
    scores: np.ndarray | None,
    predictions: np.ndarray | None,
    *,
    X_valid: pd.DataFrame | None = None,
    y_valid: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    calibration: str = "auto",
    joint: str = "pca",
    conformal_alpha: float = 0.1,
    seed: int = 0,
) -> str:
    """Build the reference profile and store it as JSON; returns its key.

    Args:
        X_train: the training features (the distribution drift is measured against).
        features: which columns are numeric / categorical.
        scores: validation scores (``predict_proba`` output for classification, the
            predictions for regression) — out-of-sample, so comparable with live scores.
        predictions: validation predictions (classification).
        X_valid, y_valid: the validation rows and their labels: with them a classifier's
            probabilities are calibrated (``calibration``) and a regressor gets an error
            model, the two label-free estimates monitoring reads (``monitoring/calibration``,
            ``monitoring/errormodel``).
        classes: the classifier's classes in ``scores`` column order.
        calibration: ``"auto"``, ``"isotonic"``, ``"sigmoid"`` or ``"none"``.
        conformal_alpha: the split-conformal level (``profile["conformal"]``).
        joint: ``monitoring.joint_drift``: what the joint profile (``profile["joint"]``) is
            made for; ``"none"`` leaves it out, only a classifier needs the row sample.
        seed: the error model's random state.
    """
    profile: dict[str, Any] = build_reference(X_train, features)
    if joint != "none" and (features.numeric or features.categorical) and len(X_train) >= 10:
        profile["joint"] = fit_joint_profile(
            X_train, numeric=features.numeric, categorical=features.categorical,
            sample_size=2000 if joint in ("classifier", "both") else 0, seed=seed,
        )
    if scores is not None or predictions is not None:
        # scores are profiled separately because they come from other rows than X_train
        n = len(scores) if scores is not None else len(predictions)  # type: ignore[arg-type]
        scored = build_reference(
            pd.DataFrame(index=range(n)), numeric=[], categorical=[], scores=scores, predictions=predictions
        )
        profile["score"], profile["prediction"] = scored["score"], scored["prediction"]
    if y_valid is not None and scores is not None:
        with contextlib.suppress(DataError):  # too few validation rows for the level: no sets
            profile["conformal"] = (
                fit_conformal(y_valid, proba=scores, classes=list(classes), alpha=conformal_alpha)
                if classes is not None else fit_conformal(y_valid, predictions=scores, alpha=conformal_alpha)
            )
        if classes is not None and calibration != "none":
            profile["calibration"] = fit_calibration(scores, y_valid, classes, method=calibration)
        elif classes is None and X_valid is not None and len(X_valid) >= 20:
            categories = {c: profile["columns"][c]["categories"] for c in features.categorical}
            profile["error_model"] = fit_error_model(
                X_valid, y_valid, scores, numeric=features.numeric, categorical=features.categorical,
                categories=categories, seed=seed,
            )
    return put_json(artifacts, profile)


def save_onnx(artifacts: ArtifactStore, pipeline: Pipeline, signature: list[dict[str, Any]],
              check_frame: pd.DataFrame) -> dict[str, Any]:
    """Convert the bundle to ONNX and store the graph when it matches the pipeline.

    The graph is a second, code-free format of the same model (:mod:`modelpilot.onnx`):
    stored content-addressed beside the skops file only when its parity check on
    ``check_frame`` (the validation rows) passes. A model that does not convert still
    registers — it is served from its skops file.

    Returns:
        What the version records as ``lineage["onnx"]``: ``{"status": "converted", "key",
        "inputs", "output", "task", "parity", "opset", "bytes"}``, or ``{"status":
        "failed" | "unavailable", "reason"}`` (with ``"parity"`` when the figures were
        outside the tolerance).
    """
    from modelpilot.onnx import ConversionError, available, convert

    if not available():
        return {"status": "unavailable",
                "reason": "skl2onnx/onnxruntime are not installed: pip install 'modelpilot[edge]'"}
    try:
        converted = convert(pipeline, signature, check_frame)
    except ConversionError as exc:
        return {"status": "failed", "reason": str(exc)}
    except Exception as exc:  # a converter bug must never fail the training run
        log.warning("ONNX conversion failed unexpectedly", exc_info=True)
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    if not converted.parity.passed:
        return {"status": "failed", "reason": f"the graph does not match the pipeline: {converted.parity.describe()}",
                "parity": converted.parity.to_dict()}
    key = artifacts.put_bytes(converted.graph, suffix=".onnx")
    return {"status": "converted", "key": key, **converted.describe()}
