"""The canary's health check at each of its boundaries, on both sides.

``health`` and ``latency_check`` read plain frames of logged calls (prediction, label,
latency), so each limit is checked here at exactly its value and one step beyond: the
error rate and the calls it needs, the divergence and the rows it needs, the labelled
metric's tolerance and minimum, the latency limit (ratio or slack, whichever is larger),
its minimum sample and the optional hard ceiling.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from scipy.stats import binomtest

from modelpilot.config import CanaryConfig
from modelpilot.metrics import format_shortfall
from modelpilot.rollout.canary import LATENCY_ALPHA, MIN_HEALTH_ROWS, health, latency_check
from modelpilot.rollout.state import RolloutState

STATE = RolloutState(model="m", id="r", strategy="canary", candidate=2, champion=1, started_at="", log_since="",
                     share=0.5)
# limits far from what a test does not look at: each test is about one limit
QUIET = {"max_divergence": 1.0, "min_labelled": 100_000}


def calls(n: int, *, wrong: int = 0, prediction: str = "1", latency: float = 5.0, labelled: bool = True) -> pd.DataFrame:
    """n answered calls predicting ``prediction``; the first ``wrong`` of them are mislabelled."""
    labels: list[Any] = [prediction] * n
    for i in range(wrong):
        labels[i] = "0" if prediction == "1" else "1"
    return pd.DataFrame({"prediction": [prediction] * n, "label": labels if labelled else [None] * n,
                         "latency_ms": [latency] * n, "score": [0.9] * n})


def judge(chal: pd.DataFrame, errors: pd.DataFrame, champ: pd.DataFrame, *, divergence: bool = True,
          **canary: Any) -> tuple[list[str], dict[str, Any]]:
    cfg = SimpleNamespace(rollout=SimpleNamespace(canary=CanaryConfig(**{**QUIET, **canary})))
    return health(cfg, STATE, chal, errors, champ, chal, "classification", "accuracy", divergence=divergence)


# --------------------------------------------------------------------------- error rate


@pytest.mark.parametrize(("answered", "failed", "judged", "breached"), [
    (18, 2, True, False),   # 2 of 20 = exactly the limit: healthy
    (17, 3, True, True),    # 3 of 20 is above it
    (18, 1, False, False),  # 19 calls say nothing yet
    (0, MIN_HEALTH_ROWS // 2 - 1, False, False),  # 9 failures alone: not yet
    (0, MIN_HEALTH_ROWS // 2, True, True),        # 10 failures alone are enough to judge
])
def test_the_error_rate_is_judged_from_enough_calls_and_breaches_only_above_the_limit(
        answered: int, failed: int, judged: bool, breached: bool) -> None:
    breaches, numbers = judge(calls(answered), calls(failed), calls(200), max_error_rate=0.1)
    assert ("error_rate" in numbers) is judged
    if judged:
        assert numbers["error_rate"] == pytest.approx(failed / (answered + failed))
    rate = failed / max(answered + failed, 1)
    expected = [f"error rate {rate:.1%} > 10.0% ({failed} of {answered + failed} calls failed)"] if breached else []
    assert breaches == expected


# --------------------------------------------------------------------------- divergence


@pytest.mark.parametrize(("n_chal", "n_champ", "judged"), [
    (MIN_HEALTH_ROWS, MIN_HEALTH_ROWS, True),
    (MIN_HEALTH_ROWS - 1, MIN_HEALTH_ROWS, False),
    (MIN_HEALTH_ROWS, MIN_HEALTH_ROWS - 1, False),
])
def test_divergence_needs_enough_rows_in_both_arms(n_chal: int, n_champ: int, judged: bool) -> None:
    # the challenger answers "1" to everyone, the champion "0": as different as can be
    chal, champ = calls(n_chal, prediction="1"), calls(n_champ, prediction="0")
    breaches, numbers = judge(chal, calls(0), champ, max_divergence=0.25)
    assert ("divergence" in numbers) is judged
    if judged:
        assert numbers["divergence"] > 0.25
        assert breaches == [f"score divergence (Jensen-Shannon) {numbers['divergence']:.3f} > 0.25"]
    else:
        assert breaches == []
    # A/B judges no divergence at all
    assert "divergence" not in judge(chal, calls(0), champ, divergence=False, max_divergence=0.25)[1]


def test_a_divergence_equal_to_the_limit_is_healthy() -> None:
    same = calls(50, prediction="1")
    breaches, numbers = judge(same, calls(0), same, max_divergence=0.0)
    assert numbers["divergence"] == 0.0 and breaches == []
    mixed = pd.concat([calls(40, prediction="1"), calls(10, prediction="0")], ignore_index=True)
    breaches, numbers = judge(mixed, calls(0), same, max_divergence=0.0)
    assert numbers["divergence"] > 0.0
    assert breaches == [f"score divergence (Jensen-Shannon) {numbers['divergence']:.3f} > 0.0"]


# --------------------------------------------------------------------------- labelled metric


@pytest.mark.parametrize(("n_champ", "n_chal", "min_labelled", "judged"), [
    (40, 40, 40, True), (40, 40, 41, False), (39, 40, 40, False), (40, 39, 40, False),
])
def test_the_labelled_metric_waits_for_min_labelled_rows_in_both_arms(
        n_champ: int, n_chal: int, min_labelled: int, judged: bool) -> None:
    champ, chal = calls(n_champ), calls(n_chal, wrong=n_chal // 2)  # the challenger is right half the time
    breaches, numbers = judge(chal, calls(0), champ, min_labelled=min_labelled, metric_tolerance=0.03)
    assert ("metric" in numbers) is judged
    if judged:
        assert (numbers["metric"], numbers["champion_metric"], numbers["challenger_metric"]) == ("accuracy", 1.0, 0.5)
        assert len(breaches) == 1 and breaches[0].startswith("accuracy 0.5000 vs champion 1.0000 on labelled traffic")
    else:
        assert breaches == []


def test_unlabelled_rows_do_not_count_towards_min_labelled() -> None:
    champ = pd.concat([calls(30), calls(30, labelled=False)], ignore_index=True)
    breaches, numbers = judge(calls(60, wrong=30), calls(0), champ, min_labelled=31)
    assert "metric" not in numbers and breaches == []


@pytest.mark.parametrize(("tolerance", "breached"), [(0.25, False), (0.24, True)])
def test_a_labelled_metric_worse_by_exactly_the_tolerance_is_healthy(tolerance: float, breached: bool) -> None:
    champ, chal = calls(40), calls(40, wrong=10)  # accuracy 1.0 vs 0.75: worse by 0.25
    breaches, numbers = judge(chal, calls(0), champ, min_labelled=40, metric_tolerance=tolerance)
    assert (numbers["champion_metric"], numbers["challenger_metric"]) == (1.0, 0.75)
    expected = (f"accuracy 0.7500 vs champion 1.0000 on labelled traffic: worse by {format_shortfall('accuracy', 0.25)} "
                f"> tolerance {format_shortfall('accuracy', tolerance)}")
    assert breaches == ([expected] if breached else [])


# --------------------------------------------------------------------------- latency


def latencies(*values: float) -> pd.DataFrame:
    return pd.DataFrame({"latency_ms": list(values)})


@pytest.mark.parametrize(("n_chal", "n_champ", "judged"), [(20, 20, True), (19, 20, False), (20, 19, False)])
def test_latency_is_judged_once_both_arms_have_min_latency_samples(n_chal: int, n_champ: int, judged: bool) -> None:
    cc = CanaryConfig(min_latency_samples=20)
    breach, numbers = latency_check(cc, latencies(*[10.0] * n_champ), latencies(*[100.0] * n_chal))
    assert (numbers["latency_n_champion"], numbers["latency_n_challenger"]) == (n_champ, n_chal)
    assert ("latency_p99_ms" in numbers) is judged
    if judged:
        assert breach is not None and numbers["latency_limit_ms"] == 30.0 and numbers["latency_over_limit"] == n_chal
        assert numbers["latency"] == f"latency p99 100 ms vs the champion's 10 ms in the same period ({n_chal}/{n_champ} calls)"
    else:
        assert breach is None
        assert numbers["latency"] == (f"latency not judged yet: {n_chal} challenger / {n_champ} champion calls in the "
                                      "period, 20 each needed (rollout.canary.min_latency_samples)")


@pytest.mark.parametrize(("champion_ms", "limit"), [(100.0, 150.0), (10.0, 30.0)])
def test_the_latency_limit_is_the_larger_of_the_ratio_and_the_slack(champion_ms: float, limit: float) -> None:
    cc = CanaryConfig(min_latency_samples=20, max_latency_ratio=1.5, latency_slack_ms=20.0)
    champ = latencies(*[champion_ms] * 200)
    at_limit = latency_check(cc, champ, latencies(*[limit] * 100))
    assert at_limit[0] is None and at_limit[1]["latency_limit_ms"] == limit
    assert at_limit[1]["latency_over_limit"] == 0 and at_limit[1]["latency_p_value"] == 1.0
    assert at_limit[1]["latency_ratio"] == pytest.approx(limit / champion_ms)
    breach, numbers = latency_check(cc, champ, latencies(*[limit + 1] * 100))
    assert numbers["latency_over_limit"] == 100
    assert numbers["latency_p_value"] == pytest.approx(binomtest(100, 100, 0.01, alternative="greater").pvalue)
    assert breach == (f"latency p99 {limit + 1:.0f} ms vs the champion's {champion_ms:.0f} ms in the same period "
                      f"(100/200 calls): more than 1.5x and 20 ms above it on 100 calls "
                      f"(p={numbers['latency_p_value']:.2g} against the 1 % a p99 allows; "
                      "rollout.canary.max_latency_ratio, latency_slack_ms)")


def test_a_p99_over_the_limit_from_a_few_calls_is_not_significant() -> None:
    cc = CanaryConfig(min_latency_samples=20)
    chal = latencies(*[10.0] * 98, 500.0, 500.0)  # 2 of 100 calls slow: the p99 is over the limit
    breach, numbers = latency_check(cc, latencies(*[10.0] * 200), chal)
    assert numbers["latency_p99_ms"] > numbers["latency_limit_ms"] and numbers["latency_over_limit"] == 2
    p = binomtest(2, 100, 0.01, alternative="greater").pvalue
    assert numbers["latency_p_value"] == pytest.approx(p) and p >= LATENCY_ALPHA
    assert breach is None


def test_a_champion_at_zero_latency_has_no_ratio() -> None:
    _, numbers = latency_check(CanaryConfig(min_latency_samples=20), latencies(*[0.0] * 20), latencies(*[1.0] * 20))
    assert numbers["latency_ratio"] is None and numbers["latency_limit_ms"] == 20.0


@pytest.mark.parametrize(("ceiling", "breached"), [(40.0, False), (39.0, True)])
def test_the_hard_latency_ceiling_breaches_only_above_it(ceiling: float, breached: bool) -> None:
    cc = CanaryConfig(min_latency_samples=20, max_latency_p99_ms=ceiling)
    same = latencies(*[40.0] * 50)
    breach, _ = latency_check(cc, same, same)
    expected = (f"latency p99 40 ms vs the champion's 40 ms in the same period (50/50 calls): above the hard limit "
                f"{ceiling:.0f} ms (rollout.canary.max_latency_p99_ms)")
    assert breach == (expected if breached else None)
