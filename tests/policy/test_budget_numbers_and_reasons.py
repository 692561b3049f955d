"""The retraining budget as a user reads it: the numbers an event records, the reason
sentence either way, the period in words, and which retrains count at the period's edges
(in time and in labelled rows).

Costs are exact binary fractions (0.5, 1.25, 2.0) so every sum and sentence can be written
out in full.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelpilot.config import BudgetConfig
from modelpilot.policy.budget import check_budget, current, describe_period, in_rows_period

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=3)
HISTORY = [(T0, 0.5), (T0 + timedelta(days=1), 1.25)]


def test_numbers_of_a_budget_in_time_are_recorded_under_their_keys() -> None:
    status = check_budget(BudgetConfig(max_retrains=5, max_cost=10.0, period="7d"), HISTORY, NOW)
    assert status.numbers() == {
        "budget_retrains": 2,
        "budget_max_retrains": 5,
        "budget_spent": 1.75,
        "budget_projected_cost": 3.0,  # 1.75 spent + the last retrain's 1.25 again
        "budget_max_cost": 10.0,
        "budget_period_seconds": 7 * 86400.0,
        "budget_period_rows": None,
    }


def test_numbers_of_a_budget_in_rows_name_the_rows_and_no_seconds() -> None:
    status = check_budget(BudgetConfig(max_retrains=3, period_rows=1000), HISTORY, NOW, rows_since=lambda _: 10)
    assert status.numbers() == {
        "budget_retrains": 2,
        "budget_max_retrains": 3,
        "budget_spent": 1.75,
        "budget_projected_cost": 3.0,
        "budget_max_cost": None,
        "budget_period_seconds": None,
        "budget_period_rows": 1000,
    }


def test_reason_of_a_refusal_by_count() -> None:
    refused = check_budget(BudgetConfig(max_retrains=2, period="7d"), HISTORY, NOW)
    assert refused.allowed is False
    assert refused.reason == "budget: 2 retrains in the last 7 days reached budget.max_retrains 2"


def test_reason_of_a_refusal_by_cost() -> None:
    refused = check_budget(BudgetConfig(max_retrains=None, max_cost=2.5, period="7d"), HISTORY, NOW)
    assert refused.allowed is False and refused.projected_cost == 3.0
    assert refused.reason == ("budget: 1.75 spent in the last 7 days plus the expected 1.25 of another retrain "
                              "would exceed budget.max_cost 2.50")


def test_reason_of_an_allowed_retrain_quotes_both_limits_or_none() -> None:
    both = check_budget(BudgetConfig(max_retrains=3, max_cost=4.0, period="7d"), HISTORY, NOW)
    assert both.allowed is True
    assert both.reason == "budget: 2 of 3 retrains and 1.75 of 4.00 spent in the last 7 days"
    unlimited = check_budget(BudgetConfig(max_retrains=None, max_cost=None, period=None, period_rows=None),
                             HISTORY, NOW)
    assert unlimited.allowed is True
    assert unlimited.reason == "budget: 2 retrains and 1.75 spent in all time"


def test_the_next_retrain_is_projected_at_the_last_recorded_cost_or_nothing() -> None:
    cfg = BudgetConfig(max_retrains=None, max_cost=100.0, period="7d")
    # the last retrain (1.25), not the first (0.5)
    assert check_budget(cfg, HISTORY, NOW).projected_cost == 3.0
    assert check_budget(cfg, list(reversed(HISTORY)), NOW).projected_cost == 2.25
    first = check_budget(cfg, [], NOW)
    assert (first.projected_cost, first.spent, first.retrains) == (0.0, 0.0, 0)
    # a cap of 0 allows nothing to be spent, but a first retrain projected at nothing fits it
    assert check_budget(BudgetConfig(max_retrains=None, max_cost=0.0, period="7d"), [], NOW).allowed is True


def test_period_in_words_days_seconds_rows_and_all_time() -> None:
    assert describe_period(BudgetConfig(period="7d")) == "the last 7 days"
    assert describe_period(BudgetConfig(period=86400)) == "the last 1 days"  # exactly one day is in days
    assert describe_period(BudgetConfig(period=86399)) == "the last 86399 s"
    assert describe_period(BudgetConfig(period=129600)) == "the last 1.5 days"
    assert describe_period(BudgetConfig(period_rows=50_000)) == "the last 50000 labelled rows"
    assert describe_period(BudgetConfig(max_retrains=None, period_rows=None)) == "all time"


def test_a_retrain_counts_in_rows_until_exactly_period_rows_follow_it() -> None:
    t = T0 + timedelta(hours=1)
    assert in_rows_period([(t, 1.0)], NOW, 100, lambda _: 99) == [(t, 1.0)]
    assert in_rows_period([(t, 1.0)], NOW, 100, lambda _: 100) == []
    # the rows are counted from each retrain's own time
    rows = {T0: 150, t: 20}
    assert in_rows_period([(T0, 1.0), (t, 2.0)], NOW, 100, rows.__getitem__) == [(t, 2.0)]
    # a retrain at exactly now counts; one after now has not happened yet
    assert in_rows_period([(NOW, 1.0)], NOW, 100, lambda _: 0) == [(NOW, 1.0)]
    assert in_rows_period([(NOW + timedelta(seconds=1), 1.0)], NOW, 100, lambda _: 0) == []


def test_without_a_row_count_every_past_retrain_counts_against_a_period_in_rows() -> None:
    cfg = BudgetConfig(max_retrains=1, period_rows=1)
    assert current(cfg, HISTORY, NOW) == HISTORY
    status = check_budget(cfg, HISTORY, NOW)
    assert status.retrains == 2 and status.allowed is False
    # with the rows known, a retrain followed by a labelled row no longer counts
    assert current(cfg, HISTORY, NOW, lambda _: 1) == []


def test_a_budget_in_rows_uses_the_rows_not_the_clock() -> None:
    cfg = BudgetConfig(max_retrains=1, period_rows=500)
    old = [(T0 - timedelta(days=365), 1.0)]
    assert check_budget(cfg, old, NOW, rows_since=lambda _: 499).allowed is False
    assert check_budget(cfg, old, NOW, rows_since=lambda _: 500).allowed is True


def test_without_any_period_every_retrain_up_to_now_counts() -> None:
    cfg = BudgetConfig(max_retrains=None, period=None, period_rows=None)
    later = NOW + timedelta(seconds=1)
    history = [(T0 - timedelta(days=365), 1.0), (NOW, 2.0), (later, 4.0)]
    assert current(cfg, history, NOW) == history[:2]
    assert check_budget(cfg, history, NOW).spent == 3.0
