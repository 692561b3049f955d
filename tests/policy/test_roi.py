"""Retraining cost, the realised value of promotions, ROI and the budget arithmetic on worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from modelpilot.config import BudgetConfig, CostsConfig
from modelpilot.policy.budget import check_budget
from modelpilot.policy.roi import (
    GB,
    promotion_value,
    realised_difference,
    retrain_cost,
    roi,
    summarize,
)

COSTS = CostsConfig(compute_per_hour=0.40, storage_per_gb_month=0.02, value_per_correct_prediction=0.1, currency="EUR")


def test_retrain_cost_is_compute_plus_storage() -> None:
    one = retrain_cost(1800, 2 * GB, COSTS, storage_months=3)
    assert one["compute"] == pytest.approx(0.20)  # half an hour at 0.40/h
    assert one["storage"] == pytest.approx(0.12)  # 2 GB x 0.02 x 3 months
    assert one["total"] == pytest.approx(0.32) and one["currency"] == "EUR"
    with pytest.raises(ValueError, match="cannot be negative"):
        retrain_cost(-1, 0, COSTS)


def test_realised_difference_pairs_the_same_rows() -> None:
    y = ["1", "0", "1", "1", "0"]
    d = realised_difference(y, [1, 0, 1, 0, 0], [0, 0, 0, 1, 1], task="classification")
    assert (d["measure"], d["n"], d["new"], d["old"]) == ("accuracy", 5, 0.8, 0.4)
    assert d["difference"] == pytest.approx(0.4) and d["ci_low"] < 0.4 < d["ci_high"]
    # regression: absolute error avoided per prediction, in the target's units
    r = realised_difference([100.0, 200.0], [110.0, 190.0], [130.0, 240.0], task="regression")
    assert (r["measure"], r["new"], r["old"], r["difference"]) == ("mae", 10.0, 35.0, 25.0)
    empty = realised_difference([], [], [], task="classification")
    assert empty["n"] == 0 and empty["difference"] is None
    with pytest.raises(ValueError, match="differ in length"):
        realised_difference([1], [1, 0], [1], task="classification")


def test_value_is_served_times_unit_times_realised_difference() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.30, cost_per_error=0.20)
    d = realised_difference(["1"] * 4, ["1", "1", "1", "0"], ["1", "0", "0", "0"], task="classification")
    v = promotion_value(d, 10_000, costs, task="classification")
    # 10,000 predictions x (0.30 earned + 0.20 not lost) per better prediction x 0.5
    assert v["value"] == pytest.approx(2_500.0) and v["paired"] == 4 and v["served"] == 10_000
    reg = promotion_value(realised_difference([10.0], [12.0], [15.0], task="regression"), 100,
                          CostsConfig(cost_per_unit_error=2.0), task="regression")
    assert reg["value"] == pytest.approx(100 * 2.0 * 3.0)
    unset = promotion_value(d, 10_000, CostsConfig(), task="classification")
    assert unset["value"] is None and "costs.value_per_correct_prediction" in unset["note"]
    assert "cost_per_unit_error" in promotion_value(None, 5, CostsConfig(), task="regression")["note"]
    none_yet = promotion_value(realised_difference([], [], [], task="classification"), 50, costs, task="classification")
    assert none_yet["value"] is None and "no labelled row" in none_yet["note"]


def test_roi_is_a_ratio_and_needs_a_cost_floor() -> None:
    r = roi(30.0, 0.88, COSTS)
    assert r["net_value"] == pytest.approx(29.12) and r["roi"] == pytest.approx(29.12 / 0.88)
    # a retrain costing 0.00006 would make "ROI 536,111x": value and cost are shown, no ratio
    tiny = roi(30.0, 0.000056, COSTS)
    assert tiny["roi"] is None and "costs.roi_min_cost" in tiny["roi_note"]
    assert tiny["value"] == 30.0 and tiny["cost"] == pytest.approx(0.000056) and tiny["net_value"] == pytest.approx(30.0, abs=1e-4)
    assert roi(30.0, 0.0, COSTS)["roi"] is None
    assert roi(30.0, 0.000056, CostsConfig(roi_min_cost=0.00001))["roi"] == pytest.approx((30 - 0.000056) / 0.000056)
    unknown = roi(None, 1.0, COSTS)
    assert unknown["roi"] is None and unknown["net_value"] is None and unknown["roi_note"] == "no measured value"


def test_summary_per_retrain_period_and_total() -> None:
    costs = CostsConfig(value_per_correct_prediction=1.0, currency="EUR")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    good = realised_difference(["1"] * 10, ["1"] * 9 + ["0"], ["1"] * 7 + ["0"] * 3, task="classification")
    rows = [
        {"run": 1, "time": t0, "cost": 0.5, "outcome": "promoted", "version": 2, "difference": good, "served": 1000},
        {"run": 2, "time": t0 + timedelta(days=1), "cost": 0.5, "outcome": "rejected", "version": 3},
        {"run": 3, "time": t0 + timedelta(days=8), "cost": 1.0, "outcome": "waiting", "version": 4},
        {"run": 4, "time": t0 + timedelta(days=9), "cost": 1.0, "outcome": "promoted", "version": 5,
         "difference": None, "served": 300},
    ]
    out = summarize(rows, costs, period_seconds=7 * 86400, task="classification")
    first, rejected, waiting, unmeasured = out["retrains"]
    assert first["value"] == pytest.approx(1000 * 0.2) and first["roi"] == pytest.approx((200 - 0.5) / 0.5)
    assert rejected["value"] == 0.0 and rejected["roi"] == pytest.approx(-1.0)
    assert waiting["outcome"] == "waiting" and waiting["value"] == 0.0
    assert unmeasured["value"] is None and "no labelled row" in unmeasured["value_note"]
    # one period per budget period; values are added over promotions (each over its own rows)
    assert [p["retrains"] for p in out["periods"]] == [2, 2]
    assert out["periods"][0]["value"] == pytest.approx(200.0) and out["periods"][0]["cost"] == pytest.approx(1.0)
    assert out["periods"][1]["value"] == 0.0 and out["periods"][1]["unmeasured"] == 1
    total = out["total"]
    assert (total["retrains"], total["cost"], total["value"]) == (4, 3.0, pytest.approx(200.0))
    assert total["roi"] == pytest.approx((200 - 3) / 3) and total["served"] == 1300 and total["paired"] == 10
    assert total["currency"] == "EUR" and total["unmeasured"] == 1


def test_the_replaced_value_per_metric_point_key_says_what_replaces_it() -> None:
    with pytest.raises(ValidationError, match="value_per_correct_prediction"):
        CostsConfig.model_validate({"value_per_metric_point": 10.0})


def test_budget_period_is_rolling() -> None:
    now = datetime(2024, 1, 8, tzinfo=UTC)
    history = [(now - timedelta(days=6, hours=23), 1.0), (now - timedelta(days=7, hours=1), 1.0)]
    status = check_budget(BudgetConfig(max_retrains=2, period="7d"), history, now)
    assert status.allowed and status.retrains == 1
    refused = check_budget(BudgetConfig(max_retrains=1, period="7d"), history, now)
    assert not refused.allowed and "budget.max_retrains 1" in refused.reason
    cost = check_budget(BudgetConfig(max_retrains=None, max_cost=1.5, period="7d"), history, now, next_cost=0.6)
    assert not cost.allowed and cost.projected_cost == pytest.approx(1.6)
