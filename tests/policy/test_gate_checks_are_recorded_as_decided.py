"""The threshold gate records every check it made, exactly as it decided it.

The event log, the CLI and the dashboard show a gate's checks as they are, so each check's
name, metric, value, limit, verdict and sentence is the gate's decision made visible: these
tests pin each field, the order of the checks and which of them become reasons.
"""

from __future__ import annotations

import pytest

from modelpilot.config import PilotConfig
from modelpilot.policy.gates import GateResult, combine, threshold_gate


def _cfg(gates: dict[str, object], **extra: object) -> PilotConfig:
    return PilotConfig.model_validate({"model": {"name": "m", "target": "y"}, "gates": gates, **extra})


def test_each_bound_is_one_check_in_metric_order_and_only_failures_are_reasons() -> None:
    cfg = _cfg({"min_metrics": {"roc_auc": 0.7, "accuracy": 0.8, "log_loss": 0.5}})

    result = threshold_gate({"accuracy": 0.75, "roc_auc": 0.9, "log_loss": 0.6}, {}, cfg)

    assert result.passed is False
    assert result.checks == [
        {"name": "min_metric", "metric": "accuracy", "value": 0.75, "limit": 0.8, "passed": False,
         "message": "accuracy = 0.75 must be >= 0.8 (gates.min_metrics.accuracy)"},
        {"name": "max_metric", "metric": "log_loss", "value": 0.6, "limit": 0.5, "passed": False,
         "message": "log_loss = 0.6 must be <= 0.5 (gates.min_metrics.log_loss)"},
        {"name": "min_metric", "metric": "roc_auc", "value": 0.9, "limit": 0.7, "passed": True,
         "message": "roc_auc = 0.9 must be >= 0.7 (gates.min_metrics.roc_auc)"},
    ]
    assert result.reasons == [result.checks[0]["message"], result.checks[1]["message"]]


def test_one_failed_bound_among_passing_ones_fails_the_gate() -> None:
    cfg = _cfg({"min_metrics": {"accuracy": 0.8, "roc_auc": 0.7}})
    assert threshold_gate({"accuracy": 0.9, "roc_auc": 0.9}, {}, cfg).passed is True
    assert threshold_gate({"accuracy": 0.9, "roc_auc": 0.6}, {}, cfg).passed is False
    assert threshold_gate({"accuracy": 0.7, "roc_auc": 0.9}, {}, cfg).passed is False


def test_a_missing_metric_is_a_failed_check_with_no_value_naming_what_exists() -> None:
    result = threshold_gate({"f1": 0.9, "accuracy": 0.9}, {}, _cfg({"min_metrics": {"roc_auc": 0.7}}))

    assert result.checks == [{
        "name": "min_metric", "metric": "roc_auc", "value": None, "limit": 0.7, "passed": False,
        "message": "roc_auc was not computed for this model, so gates.min_metrics.roc_auc cannot be checked: "
                   "use one of accuracy, f1",
    }]
    assert result.passed is False and result.reasons == [result.checks[0]["message"]]
    missing_error = threshold_gate({"accuracy": 0.9}, {}, _cfg({"min_metrics": {"rmse": 2.0}}))
    assert missing_error.checks[0]["name"] == "max_metric" and missing_error.passed is False


def test_the_overfit_gap_check_records_the_gap_and_its_bound() -> None:
    result = threshold_gate({"accuracy": 0.8}, {"accuracy": 0.9}, _cfg({"max_overfit_gap": 0.05}))

    [check] = result.checks
    assert check["name"] == "overfit_gap" and check["metric"] == "accuracy" and check["limit"] == 0.05
    assert check["value"] == pytest.approx(0.1) and check["passed"] is False
    assert check["message"] == ("train/validation gap of accuracy = 0.1000 must be <= 0.0500 "
                                "(gates.max_overfit_gap)")
    assert result.reasons == [check["message"]]


def test_a_gap_exactly_at_its_bound_passes_and_one_above_fails() -> None:
    cfg = _cfg({"max_overfit_gap": 0.25})
    # exact binary fractions, so the gap is exactly the bound
    assert threshold_gate({"accuracy": 0.5}, {"accuracy": 0.75}, cfg).passed is True
    assert threshold_gate({"accuracy": 0.5}, {"accuracy": 0.875}, cfg).passed is False


def test_a_gap_that_cannot_be_measured_fails_and_says_so() -> None:
    result = threshold_gate({"accuracy": 0.9}, {}, _cfg({"max_overfit_gap": 0.05}))

    assert result.passed is False
    assert result.checks == [{"name": "overfit_gap", "metric": "accuracy", "value": None, "limit": 0.05,
                              "passed": False, "message": "no accuracy on train and validation to measure the gap"}]
    assert result.reasons == ["no accuracy on train and validation to measure the gap"]


def test_the_gap_is_of_the_configured_primary_metric_unless_training_passes_another() -> None:
    cfg = _cfg({"max_overfit_gap": 0.05}, evaluation={"metric": "f1"})
    metrics, train = {"f1": 0.9, "accuracy": 0.5}, {"f1": 0.91, "accuracy": 0.99}

    by_config = threshold_gate(metrics, train, cfg)
    assert by_config.checks[0]["metric"] == "f1" and by_config.passed is True
    passed_in = threshold_gate(metrics, train, cfg, primary_metric="accuracy")
    assert passed_in.checks[0]["metric"] == "accuracy" and passed_in.passed is False


def test_bounds_and_gap_are_all_checked_together() -> None:
    cfg = _cfg({"min_metrics": {"accuracy": 0.8}, "max_overfit_gap": 0.05})
    result = threshold_gate({"accuracy": 0.85}, {"accuracy": 0.99}, cfg)
    assert [c["name"] for c in result.checks] == ["min_metric", "overfit_gap"]
    assert [c["passed"] for c in result.checks] == [True, False] and result.passed is False


def test_a_result_serialises_to_copies_of_its_reasons_and_checks() -> None:
    result = GateResult(False, ["r"], [{"name": "c", "passed": False}])
    as_dict = result.to_dict()
    assert as_dict == {"passed": False, "reasons": ["r"], "checks": [{"name": "c", "passed": False}]}
    as_dict["reasons"].append("x")
    as_dict["checks"].clear()
    assert result.reasons == ["r"] and len(result.checks) == 1


def test_combine_keeps_every_reason_and_check_in_gate_order() -> None:
    first = GateResult(False, ["a1", "a2"], [{"name": "a"}])
    second = GateResult(True, [], [{"name": "b"}])
    third = GateResult(False, ["c1"], [{"name": "c"}])
    combined = combine(first, second, third)
    assert combined == GateResult(False, ["a1", "a2", "c1"], [{"name": "a"}, {"name": "b"}, {"name": "c"}])
    assert combine().passed is True
