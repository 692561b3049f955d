"""Cost, value and ROI as the dashboard, the backtest and the CLI show them: every field of
each result, the notes a user reads when a figure is missing, and the edges (no cost, a cost
exactly at ``costs.roi_min_cost``, one paired row, an empty period).

Numbers are chosen so each figure can be worked out by hand.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelpilot.config import CostsConfig
from modelpilot.policy.roi import (
    GB,
    promotion_value,
    realised_difference,
    retrain_cost,
    roi,
    summarize,
    unit_value,
    value_hint,
)

Z95 = 1.959963984540054
FORMULA = ("value = predictions served x value per better prediction x realised difference; "
           "net value = value - cost; ROI = net value / cost")
NO_PAIRS = "no labelled row scored by both models yet (the retired champion's shadow sample)"
CLASSIFICATION_HINT = "set costs.value_per_correct_prediction and/or costs.cost_per_error to value predictions"
REGRESSION_HINT = "set costs.cost_per_unit_error to value predictions"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_retrain_cost_reports_every_part_and_keeps_a_month_by_default() -> None:
    costs = CostsConfig(compute_per_hour=0.40, storage_per_gb_month=0.02, currency="EUR")
    assert retrain_cost(1800, 2 * GB, costs) == {
        "compute": 0.2, "storage": 0.04, "total": 0.24, "compute_seconds": 1800.0, "stored_gb": 2.0, "currency": "EUR",
    }
    # rounded to a millionth: one second at 0.40/h is 0.000111..., half a GB a month 0.01
    one_second = retrain_cost(1, GB // 2, costs)
    assert (one_second["compute"], one_second["storage"], one_second["total"]) == (0.000111, 0.01, 0.010111)
    # a third of a GB at 0.01 a month is 0.003333...
    assert retrain_cost(0, GB // 3, CostsConfig(storage_per_gb_month=0.01))["storage"] == 0.003333


def test_retrain_cost_of_nothing_is_zero_and_any_negative_input_is_refused() -> None:
    free = retrain_cost(0, 0, CostsConfig(), storage_months=0)
    assert (free["compute"], free["storage"], free["total"], free["stored_gb"]) == (0.0, 0.0, 0.0, 0.0)
    message = "compute_seconds, stored_bytes and storage_months cannot be negative"
    for seconds, size, months in [(-1, 0, 1.0), (0, -1, 1.0), (0, 0, -1.0)]:
        with pytest.raises(ValueError) as raised:
            retrain_cost(seconds, size, CostsConfig(), storage_months=months)
        assert str(raised.value) == message


def test_unit_value_adds_what_is_set_and_is_none_when_nothing_is() -> None:
    assert unit_value(CostsConfig(value_per_correct_prediction=0.25), "classification") == 0.25
    assert unit_value(CostsConfig(cost_per_error=0.5), "classification") == 0.5
    assert unit_value(CostsConfig(value_per_correct_prediction=0.25, cost_per_error=0.5), "classification") == 0.75
    assert unit_value(CostsConfig(cost_per_unit_error=2.0), "classification") is None
    assert unit_value(CostsConfig(cost_per_unit_error=2.0), "regression") == 2.0
    assert unit_value(CostsConfig(value_per_correct_prediction=0.25), "regression") is None


def test_value_hints_name_the_keys_of_the_task() -> None:
    assert value_hint("classification") == CLASSIFICATION_HINT
    assert value_hint("regression") == REGRESSION_HINT


def test_realised_difference_reports_every_field_with_its_paired_interval() -> None:
    d = realised_difference(["1"] * 4, ["1", "1", "1", "0"], ["1", "0", "0", "0"], task="classification")
    # per-row differences 0, 1, 1, 0: mean 0.5, sample standard deviation sqrt(1/3)
    half = Z95 * math.sqrt(1 / 3) / 2
    assert d == {"measure": "accuracy", "n": 4, "new": 0.75, "old": 0.25, "difference": 0.5,
                 "ci_low": pytest.approx(0.5 - half), "ci_high": pytest.approx(0.5 + half)}
    reg = realised_difference([0.0, 0.0], [1.0, 3.0], [2.0, 6.0], task="regression")
    # errors avoided 1 and 3: mean 2, sample standard deviation sqrt(2)
    half = Z95 * math.sqrt(2) / math.sqrt(2)
    assert reg == {"measure": "mae", "n": 2, "new": 2.0, "old": 4.0, "difference": 2.0,
                   "ci_low": pytest.approx(2.0 - half), "ci_high": pytest.approx(2.0 + half)}


def test_one_paired_row_has_no_finite_interval_and_none_has_no_figures() -> None:
    one = realised_difference([1], [1], [0], task="classification")
    assert (one["n"], one["difference"], one["ci_low"], one["ci_high"]) == (1, 1.0, -math.inf, math.inf)
    assert realised_difference([], [], [], task="regression") == {
        "measure": "mae", "n": 0, "new": None, "old": None, "difference": None, "ci_low": None, "ci_high": None,
    }
    with pytest.raises(ValueError) as raised:
        realised_difference([1, 0], [1], [1, 0, 1], task="classification")
    assert str(raised.value) == "labels, pred_new and pred_old differ in length: 2, 1, 3"


def test_promotion_value_reports_every_field_and_its_interval() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.25)
    d = {"n": 4, "difference": 0.5, "ci_low": -0.25, "ci_high": 1.0}
    assert promotion_value(d, 1000, costs, task="classification") == {
        "value": 125.0, "value_low": -62.5, "value_high": 250.0, "served": 1000, "paired": 4,
        "unit_value": 0.25, "note": None,
    }


def test_promotion_value_without_a_finite_interval_gives_the_value_alone() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.25)
    one = realised_difference([1], [1], [0], task="classification")
    v = promotion_value(one, 8, costs, task="classification")
    assert (v["value"], v["value_low"], v["value_high"], v["paired"]) == (2.0, None, None, 1)
    low_only = promotion_value({"n": 3, "difference": 0.5, "ci_low": 0.25, "ci_high": None}, 8, costs,
                               task="classification")
    assert (low_only["value"], low_only["value_low"], low_only["value_high"]) == (1.0, None, None)
    high_inf = promotion_value({"n": 3, "difference": 0.5, "ci_low": 0.25, "ci_high": math.inf}, 8, costs,
                               task="classification")
    assert (high_inf["value_low"], high_inf["value_high"]) == (None, None)


def test_promotion_value_notes_say_what_is_missing() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.25)
    assert promotion_value(None, 7, costs, task="classification") == {
        "value": None, "value_low": None, "value_high": None, "served": 7, "paired": 0, "unit_value": 0.25,
        "note": NO_PAIRS,
    }
    # paired rows reported but no difference measured
    missing = promotion_value({"n": 2, "difference": None}, 7, costs, task="classification")
    assert (missing["value"], missing["paired"], missing["note"]) == (None, 2, NO_PAIRS)
    unvalued = promotion_value({"n": 2, "difference": 0.5}, 7, CostsConfig(), task="regression")
    assert (unvalued["value"], unvalued["unit_value"], unvalued["note"]) == (None, None, REGRESSION_HINT)


def test_roi_reports_every_field() -> None:
    costs = CostsConfig(currency="EUR")
    assert roi(3.0, 2.0, costs) == {"value": 3.0, "cost": 2.0, "net_value": 1.0, "roi": 0.5, "roi_note": None,
                                    "currency": "EUR", "formula": FORMULA}
    assert roi(None, 2.0, costs) == {"value": None, "cost": 2.0, "net_value": None, "roi": None,
                                     "roi_note": "no measured value", "currency": "EUR", "formula": FORMULA}


def test_roi_is_shown_from_a_cost_of_exactly_roi_min_cost() -> None:
    costs = CostsConfig(roi_min_cost=0.5)
    assert roi(1.5, 0.5, costs)["roi"] == 2.0
    below = roi(1.5, 0.25, costs)
    assert below["roi"] is None and below["net_value"] == 1.25
    assert below["roi_note"] == ("cost 0.25 USD is below costs.roi_min_cost (0.5): "
                                 "a ratio over a near-zero cost means nothing; compare value and cost")


def test_a_free_retrain_has_no_ratio_even_without_a_cost_floor() -> None:
    free = roi(1.0, 0.0, CostsConfig(roi_min_cost=0.0))
    assert free["roi"] is None and free["net_value"] == 1.0
    assert free["roi_note"] == ("cost 0 USD is below costs.roi_min_cost (0): "
                                "a ratio over a near-zero cost means nothing; compare value and cost")


def _rows() -> list[dict[str, Any]]:
    d = {"measure": "accuracy", "n": 4, "difference": 0.5, "ci_low": 0.25, "ci_high": 0.75}
    return [
        {"time": T0.isoformat(), "cost": 1.0, "outcome": "promoted", "version": 2, "difference": d, "served": 40},
        {"time": T0 + timedelta(days=1), "cost": 0.5, "outcome": "rejected", "version": 3},
        # nothing in the second period; the third starts 14 days after the first retrain
        {"time": T0 + timedelta(days=15), "cost": None, "outcome": "promoted", "version": 4, "served": 8},
    ]


def test_summary_rows_keep_their_fields_and_add_the_value_and_roi() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.25, roi_min_cost=0.0)
    out = summarize(_rows(), costs, period_seconds=7 * 86400, task="classification")
    promoted, rejected, unmeasured = out["retrains"]
    assert {k: promoted[k] for k in ("time", "outcome", "version", "value", "cost", "net_value", "roi", "served",
                                     "paired", "value_low", "value_high", "value_note")} == {
        "time": T0.isoformat(), "outcome": "promoted", "version": 2, "value": 5.0, "cost": 1.0, "net_value": 4.0,
        "roi": 4.0, "served": 40, "paired": 4, "value_low": 2.5, "value_high": 7.5, "value_note": None,
    }
    assert promoted["difference"]["difference"] == 0.5
    # a retrain that was not promoted earned nothing, and cost what it cost
    assert {k: rejected[k] for k in ("value", "cost", "net_value", "roi", "served", "paired", "value_low",
                                     "value_high", "value_note", "difference")} == {
        "value": 0.0, "cost": 0.5, "net_value": -0.5, "roi": -1.0, "served": 0, "paired": 0, "value_low": None,
        "value_high": None, "value_note": None, "difference": None,
    }
    # a promotion not measured yet has no value, and its served predictions are still counted
    assert (unmeasured["value"], unmeasured["cost"], unmeasured["served"], unmeasured["value_note"]) == (
        None, 0.0, 8, NO_PAIRS)


def test_summary_periods_start_at_the_first_retrain_and_skip_empty_ones() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.25, roi_min_cost=0.0)
    out = summarize(_rows(), costs, period_seconds=7 * 86400, task="classification")
    first, third = out["periods"]
    assert (first["start"], first["retrains"], first["value"], first["cost"], first["net_value"]) == (
        T0.isoformat(), 2, 5.0, 1.5, 3.5)
    assert (first["served"], first["paired"], first["unmeasured"]) == (40, 4, 0)
    assert (third["start"], third["retrains"], third["value"], third["cost"], third["unmeasured"]) == (
        (T0 + timedelta(days=14)).isoformat(), 1, None, 0.0, 1)
    assert out["total"] == {**roi(5.0, 1.5, costs), "retrains": 3, "served": 48, "paired": 4, "unmeasured": 1}
    assert (out["currency"], out["unit_value"], out["value_hint"]) == ("USD", 0.25, None)


def test_summary_without_a_unit_value_says_which_keys_to_set() -> None:
    rows = [{"time": T0, "cost": 2.0, "outcome": "rejected"}]
    out = summarize(rows, CostsConfig(), period_seconds=86400, task="regression")
    assert out["retrains"][0]["value"] is None  # an unvalued task: not 0, unknown
    assert (out["unit_value"], out["value_hint"]) == (None, REGRESSION_HINT)
    assert out["total"]["value"] is None and out["total"]["unmeasured"] == 1
    empty = summarize([], CostsConfig(), period_seconds=86400, task="classification")
    assert (empty["retrains"], empty["periods"], empty["value_hint"]) == ([], [], CLASSIFICATION_HINT)
    assert empty["total"] == {**roi(None, 0.0, CostsConfig()), "retrains": 0, "served": 0, "paired": 0,
                              "unmeasured": 0}


def test_a_promotion_without_a_count_of_served_predictions_has_served_none() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.25, roi_min_cost=0.0)
    d = {"measure": "accuracy", "n": 4, "difference": 0.5, "ci_low": 0.25, "ci_high": 0.75}
    row = summarize([{"time": T0, "cost": 1.0, "outcome": "promoted", "difference": d}], costs,
                    period_seconds=86400, task="classification")["retrains"][0]
    assert (row["served"], row["value"], row["net_value"], row["paired"]) == (0, 0.0, -1.0, 4)


def test_values_are_rounded_to_a_millionth() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.25)
    third = {"n": 3, "difference": 1 / 3, "ci_low": 1 / 6, "ci_high": 2 / 3}
    v = promotion_value(third, 1, costs, task="classification")  # 0.25 x 1/3, 0.25 x 1/6, 0.25 x 2/3
    assert (v["value"], v["value_low"], v["value_high"]) == (0.083333, 0.041667, 0.166667)
    r = roi(1 / 3, 1 / 7, CostsConfig())
    assert (r["value"], r["cost"], r["net_value"]) == (0.333333, 0.142857, 0.190476)


def test_a_difference_measured_on_no_paired_row_is_not_valued() -> None:
    costs = CostsConfig(value_per_correct_prediction=0.25)
    v = promotion_value({"n": 0, "difference": 0.5}, 100, costs, task="classification")
    assert (v["value"], v["paired"], v["note"]) == (None, 0, NO_PAIRS)
