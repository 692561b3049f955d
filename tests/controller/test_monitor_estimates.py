"""One monitoring pass reads the version's calibration, error model and joint profile."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from modelpilot.config import PilotConfig
from modelpilot.controller.data import FEATURE_PREFIX
from modelpilot.controller.monitor import summarize
from modelpilot.monitoring import build_reference
from modelpilot.monitoring.calibration import fit_calibration
from modelpilot.monitoring.conformal import fit_conformal
from modelpilot.monitoring.errormodel import fit_error_model
from modelpilot.monitoring.multivariate import fit_joint_profile
from modelpilot.store import ModelVersionRecord


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


def version(task: str, classes: list[str] | None) -> ModelVersionRecord:
    return ModelVersionRecord(
        model="m", version=1, run_id=None, status="registered", artifact_key="k", reference_key="r",
        signature=[{"name": "a", "type": "float"}, {"name": "b", "type": "float"}], task=task, classes=classes,
        metrics={}, lineage={}, cost=None, description=None, created_at=datetime(2024, 1, 1, tzinfo=UTC),
        idempotency_key=None,
    )


def window(rng: np.random.Generator, n: int, *, rotate: bool = False) -> pd.DataFrame:
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.8], [0.8, 1.0]], n)
    if rotate:
        z = np.column_stack([-z[:, 1], z[:, 0]])
    return pd.DataFrame({FEATURE_PREFIX + "a": z[:, 0], FEATURE_PREFIX + "b": z[:, 1]})


def reference(rng: np.random.Generator) -> dict:
    ref = window(rng, 5000).rename(columns=lambda c: c[len(FEATURE_PREFIX):])
    profile = build_reference(ref, numeric=["a", "b"], categorical=[])
    profile["joint"] = fit_joint_profile(ref, numeric=["a", "b"], sample_size=0)
    return profile


def test_classification_estimate_uses_the_calibration_and_the_joint_drift_is_reported(rng) -> None:  # type: ignore[no-untyped-def]
    cfg = PilotConfig.model_validate({"model": {"name": "m", "target": "y"}, "monitoring": {"min_samples": 50}})
    profile = reference(rng)
    # an under-confident model: P(y=1) = sigmoid(2a), it scores sigmoid(0.5a)
    a_val = rng.normal(size=5000)
    y_val = (rng.random(5000) < 1 / (1 + np.exp(-2 * a_val))).astype(int).astype(str)
    profile["calibration"] = fit_calibration(1 / (1 + np.exp(-0.5 * a_val)), y_val, ["0", "1"])
    rows = window(rng, 3000, rotate=True)
    p1 = 1 / (1 + np.exp(-0.5 * rows[FEATURE_PREFIX + "a"].to_numpy()))
    rows["probabilities"] = list(np.column_stack([1 - p1, p1]))
    rows["prediction"] = np.where(p1 > 0.5, "1", "0")
    rows["score"], rows["model_version"] = p1, 1
    rows["ts"] = pd.Timestamp("2024-01-02", tz="UTC")
    y = (rng.random(3000) < 1 / (1 + np.exp(-2 * rows[FEATURE_PREFIX + "a"].to_numpy()))).astype(int).astype(str)
    summary, details = summarize(cfg, rows, rows.iloc[:0], version("classification", ["0", "1"]), profile)
    truth = float(np.mean(y == rows["prediction"].to_numpy()))
    assert summary["estimated_performance"] == pytest.approx(truth, abs=0.02)
    assert summary["estimated_performance"] - float(np.mean(np.maximum(p1, 1 - p1))) > 0.05  # calibration mattered
    assert summary["joint_drift"]["pca_reconstruction"]["drifted"] is True
    assert summary["drifted_features"] == []  # per column the rotation is invisible


def test_regression_estimate_comes_from_the_error_model(rng) -> None:  # type: ignore[no-untyped-def]
    cfg = PilotConfig.model_validate({"model": {"name": "m", "target": "y"}, "monitoring": {"min_samples": 50},
                                      "evaluation": {"metric": "rmse"}})
    profile = reference(rng)
    val = window(rng, 4000).rename(columns=lambda c: c[len(FEATURE_PREFIX):])
    noise = 0.2 + np.abs(val["a"].to_numpy())
    profile["error_model"] = fit_error_model(val, rng.normal(size=4000) * noise, np.zeros(4000),
                                             numeric=["a", "b"], categorical=[])
    rows = window(rng, 3000) + np.array([1.5, 0.0])  # traffic moves to where the error is larger
    rows["prediction"], rows["model_version"] = 0.0, 1
    rows["ts"] = pd.Timestamp("2024-01-02", tz="UTC")
    y_val = rng.normal(size=4000) * noise
    profile["conformal"] = fit_conformal(y_val, predictions=np.zeros(4000), alpha=0.1)
    rows["label"] = rng.normal(size=3000) * (0.2 + np.abs(rows[FEATURE_PREFIX + "a"].to_numpy()))
    summary, details = summarize(cfg, rows, rows, version("regression", None), profile)
    truth = float(np.sqrt(np.mean((0.2 + np.abs(rows[FEATURE_PREFIX + "a"].to_numpy())) ** 2)))
    assert summary["estimated_performance"] == pytest.approx(truth, rel=0.08)
    # the intervals calibrated on the validation rows no longer hold where the errors grew
    assert summary["coverage"]["coverage"] < 0.8 and details["conformal"]["p_value"] < 1e-6
    # what the coverage_drop trigger reads: the promise, the test and the rows counted
    assert summary["coverage"]["target"] == pytest.approx(0.9) and summary["coverage"]["n"] == 3000
    assert summary["coverage"]["p_value"] == details["conformal"]["p_value"]
    from modelpilot.policy.trigger_state import MonitoringSummary

    read = MonitoringSummary.from_dict({**summary, "window_end": "2024-01-02T00:00:00+00:00"}).coverage
    assert read == {k: float(summary["coverage"][k]) for k in ("coverage", "target", "p_value", "n")}
