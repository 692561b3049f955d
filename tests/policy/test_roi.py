"""Retraining cost, ROI and the budget arithmetic on worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelpilot.config import BudgetConfig, CostsConfig
from modelpilot.policy.budget import check_budget
from modelpilot.policy.roi import GB, retrain_cost, roi

COSTS = CostsConfig(compute_per_hour=0.40, storage_per_gb_month=0.02, value_per_metric_point=10.0, currency="EUR")


def test_retrain_cost_is_compute_plus_storage() -> None:
    one = retrain_cost(1800, 2 * GB, COSTS, storage_months=3)
    assert one["compute"] == pytest.approx(0.20)  # half an hour at 0.40/h
    assert one["storage"] == pytest.approx(0.12)  # 2 GB x 0.02 x 3 months
    assert one["total"] == pytest.approx(0.32) and one["currency"] == "EUR"
    with pytest.raises(ValueError, match="cannot be negative"):
        retrain_cost(-1, 0, COSTS)


def test_roi_worked_example() -> None:
    # 4 retrains a period at 0.22 each recover 3 accuracy points worth 10 each
    r = roi(0.03, retrain_cost(1800, GB, COSTS), COSTS, frequency=4)
    assert r["points"] == pytest.approx(3.0)
    assert r["cost_per_retrain"] == pytest.approx(0.22)
    assert r["cost"] == pytest.approx(0.88)
    assert r["value"] == pytest.approx(30.0)
    assert r["net_value"] == pytest.approx(29.12)
    assert r["roi"] == pytest.approx(29.12 / 0.88)


def test_roi_is_sign_aware_for_error_metrics() -> None:
    # rmse falling by 0.05 is 5 points recovered; rising is a loss
    assert roi(-0.05, 1.0, COSTS, metric="rmse")["value"] == pytest.approx(50.0)
    loss = roi(0.05, 1.0, COSTS, metric="rmse")
    assert loss["value"] == pytest.approx(-50.0) and loss["roi"] == pytest.approx(-51.0)


def test_roi_over_a_list_of_retrains_and_without_cost() -> None:
    r = roi(0.01, [1.0, {"total": 3.0}], COSTS)
    assert r["frequency"] == 2 and r["cost_per_retrain"] == pytest.approx(2.0) and r["cost"] == pytest.approx(4.0)
    assert roi(0.01, 0.0, COSTS)["roi"] is None


def test_budget_period_is_rolling() -> None:
    now = datetime(2024, 1, 8, tzinfo=UTC)
    history = [(now - timedelta(days=6, hours=23), 1.0), (now - timedelta(days=7, hours=1), 1.0)]
    status = check_budget(BudgetConfig(max_retrains=2, period="7d"), history, now)
    assert status.allowed and status.retrains == 1
    refused = check_budget(BudgetConfig(max_retrains=1, period="7d"), history, now)
    assert not refused.allowed and "budget.max_retrains 1" in refused.reason
    cost = check_budget(BudgetConfig(max_retrains=None, max_cost=1.5), history, now, next_cost=0.6)
    assert not cost.allowed and cost.projected_cost == pytest.approx(1.6)
