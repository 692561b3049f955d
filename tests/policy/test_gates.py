"""The threshold gate: floors, ceilings for error metrics, the overfitting gap."""

from __future__ import annotations

import pytest

from modelpilot.config import PilotConfig
from modelpilot.policy.gates import GateResult, combine, threshold_gate


def _cfg(**gates: object) -> PilotConfig:
    return PilotConfig.model_validate({"model": {"name": "m", "target": "y"}, "gates": gates})


def test_no_configured_gate_passes() -> None:
    result = threshold_gate({"accuracy": 0.5}, {"accuracy": 0.99}, _cfg())
    assert result == GateResult(passed=True, reasons=[], checks=[])


@pytest.mark.parametrize(("value", "passed"), [(0.81, True), (0.8, True), (0.79, False)])
def test_min_metric_is_a_floor(value: float, passed: bool) -> None:
    result = threshold_gate({"accuracy": value}, {}, _cfg(min_metrics={"accuracy": 0.8}))
    assert result.passed is passed
    if not passed:
        assert result.reasons == ["accuracy = 0.79 must be >= 0.8 (gates.min_metrics.accuracy)"]


@pytest.mark.parametrize("metric", ["rmse", "mae", "log_loss"])
def test_error_metrics_are_a_ceiling(metric: str) -> None:
    cfg = _cfg(min_metrics={metric: 2.0})
    assert threshold_gate({metric: 1.5}, {}, cfg).passed
    failed = threshold_gate({metric: 2.5}, {}, cfg)
    assert not failed.passed and "must be <= 2" in failed.reasons[0]
    assert failed.checks[0]["name"] == "max_metric"


def test_missing_metric_fails_and_says_which_exist() -> None:
    result = threshold_gate({"accuracy": 0.9}, {}, _cfg(min_metrics={"roc_auc": 0.7}))
    assert not result.passed and "roc_auc was not computed" in result.reasons[0]
    assert "accuracy" in result.reasons[0]


def test_overfit_gap_is_sign_aware() -> None:
    cfg = _cfg(max_overfit_gap=0.05)
    assert not threshold_gate({"accuracy": 0.8}, {"accuracy": 0.9}, cfg).passed
    assert threshold_gate({"accuracy": 0.88}, {"accuracy": 0.9}, cfg).passed
    # rmse: validation worse (larger) than train; the gap is relative, 0.3 / 1.3
    result = threshold_gate({"rmse": 1.3}, {"rmse": 1.0}, cfg, primary_metric="rmse")
    assert not result.passed and result.checks[0]["value"] == pytest.approx(0.3 / 1.3)
    assert "23.1 % must be <= 5.0 %" in result.reasons[0]
    assert threshold_gate({"rmse": 1.0}, {"rmse": 1.3}, cfg, primary_metric="rmse").passed


@pytest.mark.parametrize(
    ("metric", "train", "validation", "passed"),
    [
        # bounded scores: points of the metric
        ("accuracy", 0.95, 0.86, True), ("accuracy", 0.99, 0.85, False),
        ("roc_auc", 0.93, 0.90, True), ("r2", 0.95, 0.70, False),
        # error metrics in the target's units (house prices): relative to the validation error
        ("rmse", 20_000.0, 21_842.0, True), ("rmse", 5_000.0, 21_842.0, False),
        ("mae", 0.9, 1.0, True), ("log_loss", 0.10, 0.40, False),
    ],
)
def test_overfit_bound_means_the_same_for_classification_and_regression(
    metric: str, train: float, validation: float, passed: bool
) -> None:
    # an absolute bound of 0.1 would call every house-price model "overfitting" (gap 1842)
    result = threshold_gate({metric: validation}, {metric: train}, _cfg(max_overfit_gap=0.1), primary_metric=metric)
    assert result.passed is passed, result.reasons
    gap = result.checks[0]["value"]
    assert 0 <= gap <= 1


def test_combine_needs_every_gate() -> None:
    ok = GateResult(True, [], [{"name": "a", "passed": True}])
    bad = GateResult(False, ["b failed"], [{"name": "b", "passed": False}])
    combined = combine(ok, bad)
    assert not combined.passed and combined.reasons == ["b failed"] and len(combined.checks) == 2
    assert combine(ok, ok).passed
