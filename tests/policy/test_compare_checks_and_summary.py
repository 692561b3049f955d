"""The champion comparison as it is recorded: every check with its sentence, the summary line,
the test's name and details, and the edge cases of the exact McNemar test and the bootstrap.

A 32-row holdout with the models' right and wrong rows placed by hand keeps every figure
exact: the champion is right on 24 rows (0.75), the challenger on 28 (0.875); 6 rows are
won by the challenger alone and 2 by the champion alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from modelpilot.config import GatesConfig
from modelpilot.errors import ConfigError, DataError
from modelpilot.policy.compare import (
    ComparisonResult,
    compare_to_champion,
    noninferiority_rows,
    paired_accuracy_variance,
)

N = 32
Y = np.array([0, 1] * (N // 2))
OLD = np.where(np.isin(np.arange(N), range(0, 8)), 1 - Y, Y)  # wrong on rows 0..7
NEW = np.where(np.isin(np.arange(N), range(6, 10)), 1 - Y, Y)  # wrong on rows 6..9
B, C = 2, 6  # rows 8, 9 right only for the champion; rows 0..5 only for the challenger
FIRST = "accuracy 0.8750 (challenger) vs 0.7500 (champion) on 32 holdout rows: improvement +0.1250, needs more than"


def compare(test: str = "mcnemar", **kw: object) -> ComparisonResult:
    rest = {k: v for k, v in kw.items() if k in ("non_inferiority_margin", "refresh", "segments")}
    gates = {k: v for k, v in kw.items() if k not in rest}
    return compare_to_champion(Y, OLD, NEW, task="classification", metric="accuracy",
                               cfg=GatesConfig(test=test, **gates), **rest)  # type: ignore[arg-type]


def wald(alpha: float = 0.05) -> tuple[float, float]:
    diff, se = (C - B) / N, math.sqrt(B + C - (C - B) ** 2 / N) / N
    z = float(norm.ppf(1 - alpha))
    return diff - z * se, diff + z * se


def test_mcnemar_result_in_full() -> None:
    result = compare()
    p = binomtest(C, B + C, 0.5, alternative="greater").pvalue
    low, high = wald()
    assert p == pytest.approx(37 / 256)
    significance = (f"mcnemar test: p={p:.4g} that the improvement is at most 0.0000 (needs < 0.05); 90% interval "
                    f"of the improvement [{low:+.4f}, {high:+.4f}]")
    assert result.to_dict() == {
        "passed": False, "reasons": [significance],
        "checks": [
            {"name": "beats_champion", "passed": True, "value": 0.125, "threshold": 0.0, "detail": f"{FIRST} 0.0000"},
            {"name": "significance", "passed": False, "value": pytest.approx(p), "threshold": 0.05,
             "detail": significance},
        ],
        "metric": "accuracy", "champion_metric": 0.75, "challenger_metric": 0.875, "delta": 0.125,
        "ci_low": pytest.approx(low), "ci_high": pytest.approx(high), "p_value": pytest.approx(p), "test": "mcnemar",
        "n": 32, "details": {"champion_only_right": B, "challenger_only_right": C},
    }
    assert result.summary == (f"challenger rejected: accuracy 0.8750 vs 0.7500 (improvement +0.1250, p={p:.3g}, "
                              f"n=32); {significance}")


def test_a_point_estimate_only_result_and_its_summary() -> None:
    result = compare("none")
    assert result.checks == [{"name": "beats_champion", "passed": True, "value": 0.125, "threshold": 0.0,
                              "detail": f"{FIRST} 0.0000"}]
    assert (result.passed, result.reasons, result.p_value, result.ci_low, result.ci_high, result.details) == (
        True, [], None, None, None, {})
    assert result.summary == "challenger beats champion: accuracy 0.8750 vs 0.7500 (improvement +0.1250, n=32)"
    # an improvement equal to the margin is not enough
    at = compare("none", min_improvement=0.125)
    assert at.passed is False
    assert at.reasons == [f"{FIRST} 0.1250"]


def test_mcnemar_shifts_the_tested_share_by_the_margin() -> None:
    result = compare(min_improvement=0.0625)  # null share 1/2 + 0.0625 x 32 / 16 = 0.625
    assert result.p_value == pytest.approx(binomtest(C, B + C, 0.625, alternative="greater").pvalue)
    # a margin the discordant rows cannot carry: the share reaches 1, nothing can be shown
    assert compare(min_improvement=0.25).p_value == 1.0
    assert compare(min_improvement=0.5).p_value == 1.0  # a share past 1 is no probability to test


def test_mcnemar_without_discordant_rows() -> None:
    same = compare_to_champion(Y, OLD, OLD, task="classification", metric="accuracy", cfg=GatesConfig(test="mcnemar"))
    assert same.p_value == 1.0 and same.passed is False
    assert same.details == {"champion_only_right": 0, "challenger_only_right": 0}
    assert (same.ci_low, same.ci_high) == (0.0, 0.0)
    # non-inferiority: no discordant row is inside any margin
    tie = compare_to_champion(Y, OLD, OLD, task="classification", metric="accuracy", cfg=GatesConfig(test="mcnemar"),
                              non_inferiority_margin=0.02)
    assert tie.p_value == 0.0 and tie.passed is True
    refresh = compare_to_champion(Y, OLD, OLD, task="classification", metric="accuracy",
                                  cfg=GatesConfig(test="mcnemar"), non_inferiority_margin=0.02, refresh=True)
    assert refresh.p_value == 1.0 and refresh.passed is True


def test_non_inferiority_result_names_its_mode_and_margin() -> None:
    result = compare(non_inferiority_margin=0.25)  # null share 1/2 - 0.25 x 32 / 16 = 0: shown at once
    assert result.test == "mcnemar non-inferiority" and result.p_value == 0.0 and result.passed
    assert result.details == {"champion_only_right": B, "challenger_only_right": C, "mode": "non_inferiority",
                              "margin": -0.25}
    assert result.checks[0] == {"name": "not_worse", "passed": True, "value": 0.125, "threshold": -0.25,
                                "detail": f"{FIRST} -0.2500 (non-inferiority after a change)"}
    assert result.summary == ("challenger not worse than the stale champion: accuracy 0.8750 vs 0.7500 "
                              "(improvement +0.1250, p=0, n=32)")


def test_a_refresh_result_tests_whether_the_challenger_is_shown_worse() -> None:
    result = compare(non_inferiority_margin=0.02, refresh=True)
    p = binomtest(B, B + C, 0.5, alternative="greater").pvalue  # the champion winning the discordant rows
    assert p == pytest.approx(247 / 256)
    low, high = wald()
    assert result.test == "mcnemar refresh" and result.passed
    assert result.details == {"champion_only_right": B, "challenger_only_right": C, "mode": "refresh",
                              "margin": -0.02}
    assert result.checks[1] == {
        "name": "not_shown_worse", "passed": True, "value": pytest.approx(p), "threshold": 0.05,
        "detail": (f"mcnemar test: p={p:.4g} that the refresh is not worse than the champion (refused below 0.05); "
                   f"90% interval of the improvement [{low:+.4f}, {high:+.4f}]")}
    assert result.summary == (f"refresh not shown worse than the champion: accuracy 0.8750 vs 0.7500 "
                              f"(improvement +0.1250, p={p:.3g}, n=32)")
    # the models swapped: the champion wins 6 of the 8 discordant rows, p = 37/256 that the refresh is not worse;
    # it is refused only with p below alpha
    def swapped(alpha: float) -> ComparisonResult:
        return compare_to_champion(Y, NEW, OLD, task="classification", metric="accuracy",
                                   cfg=GatesConfig(test="mcnemar", alpha=alpha), non_inferiority_margin=0.5, refresh=True)

    at = swapped(37 / 256)
    assert at.p_value == 37 / 256 and at.checks[1]["passed"] is True and at.passed is True
    refused = swapped(37 / 256 + 1e-9)
    assert refused.checks[1]["passed"] is False and refused.passed is False
    assert refused.summary.startswith("challenger rejected: accuracy 0.7500 vs 0.8750 (improvement -0.1250, p=0.145")


def test_a_bootstrap_of_a_challenger_right_on_every_row_the_champion_missed() -> None:
    always = compare_to_champion(Y, 1 - Y, Y, task="classification", metric="accuracy",
                                 cfg=GatesConfig(n_bootstrap=199))
    # every replicate shows +1: none at or below the margin, so p = (0 + 1) / (199 + 1)
    assert (always.p_value, always.ci_low, always.ci_high, always.details) == (0.005, 1.0, 1.0, {"replicates": 199})
    assert always.passed
    refresh = compare_to_champion(Y, 1 - Y, Y, task="classification", metric="accuracy",
                                  cfg=GatesConfig(n_bootstrap=199), non_inferiority_margin=0.02, refresh=True)
    assert refresh.p_value == 1.0 and refresh.passed  # every replicate is at or above 0: none shows it worse
    same = compare_to_champion(Y, Y, Y, task="classification", metric="accuracy", cfg=GatesConfig(n_bootstrap=199))
    assert (same.p_value, same.ci_low, same.ci_high) == (1.0, 0.0, 0.0)
    tie = compare_to_champion(Y, Y, Y, task="classification", metric="accuracy", cfg=GatesConfig(n_bootstrap=199),
                              non_inferiority_margin=0.02)
    assert tie.p_value == 0.005 and tie.passed


def test_the_error_messages_say_what_to_change() -> None:
    with pytest.raises(DataError) as lengths:
        compare_to_champion(Y, OLD[:31], NEW[:30], task="classification", metric="accuracy", cfg=GatesConfig())
    assert str(lengths.value) == ("the holdout has 32 labels but 31 champion and 30 challenger predictions: score both "
                                  "models on the same rows")
    with pytest.raises(DataError) as short:
        compare_to_champion(Y[:29], OLD[:29], NEW[:29], task="classification", metric="accuracy", cfg=GatesConfig())
    assert str(short.value) == ("only 29 labelled holdout rows; comparing champion and challenger needs at least 30: "
                                "raise retraining.holdout_fraction or wait for more feedback labels")
    assert compare_to_champion(Y[:30], OLD[:30], NEW[:30], task="classification", metric="accuracy",
                               cfg=GatesConfig(test="none")).n == 30
    with pytest.raises(ConfigError) as mcnemar:
        compare_to_champion(Y, OLD, NEW, task="classification", metric="f1", cfg=GatesConfig(test="mcnemar"))
    assert str(mcnemar.value) == ("gates.test: mcnemar compares right/wrong answers and needs metric accuracy, not "
                                  "'f1': set gates.test: bootstrap")
    with pytest.raises(ConfigError) as regression:
        compare_to_champion(Y, OLD, NEW, task="regression", metric="accuracy", cfg=GatesConfig())
    assert str(regression.value) == "metric 'accuracy' is not a regression metric: use rmse, mae or r2"
    with pytest.raises(ConfigError) as proba:
        compare_to_champion(Y, OLD, NEW, task="classification", metric="log_loss", cfg=GatesConfig(),
                            proba_champion=np.full(N, 0.5))
    assert str(proba.value) == ("metric log_loss needs predicted probabilities from both models; the model has no "
                                "predict_proba: choose evaluation.metric accuracy or f1")
    with pytest.raises(DataError) as shape:
        compare_to_champion(Y, OLD, NEW, task="classification", metric="log_loss", cfg=GatesConfig(),
                            proba_champion=np.full((N, 3), 0.5), proba_challenger=np.full((N, 3), 0.5))
    assert str(shape.value) == ("probabilities of shape (32, 3) do not match 32 rows and 2 classes: pass classes= in "
                                "predict_proba column order")
    with pytest.raises(DataError) as unknown:
        compare_to_champion(Y, OLD, NEW, task="classification", metric="f1", cfg=GatesConfig(), classes=[0, 2])
    assert str(unknown.value) == "the holdout holds labels the models do not know: pass classes="
    with pytest.raises(DataError) as segment:
        compare_to_champion(Y, OLD, NEW, task="classification", metric="accuracy", cfg=GatesConfig(test="none"),
                            segments={"region": ["n"] * 31})
    assert str(segment.value) == "segment column 'region' has 31 values for 32 holdout rows"


def test_a_segment_check_in_full() -> None:
    result = compare("none", segments={"region": ["n"] * N}, max_segment_regression=0.0)
    assert result.checks[1] == {
        "name": "segment:region=n", "passed": True, "value": -0.125, "threshold": 0.0,
        "detail": ("segment region=n (32 rows): accuracy 0.8750 (challenger) vs 0.7500 (champion), 0.0000 worse, "
                   "allowed 0.0000")}
    swapped = compare_to_champion(Y, NEW, OLD, task="classification", metric="accuracy",
                                  cfg=GatesConfig(test="none", max_segment_regression=0.125),
                                  segments={"region": ["n"] * N})
    assert swapped.checks[1]["passed"] is True and swapped.checks[1]["value"] == 0.125  # a regression of the limit
    assert swapped.checks[1]["detail"].endswith("0.1250 worse, allowed 0.1250")


def test_a_roc_auc_segment_holding_one_class_is_not_checked() -> None:
    y = np.array([0, 1] * 32)
    proba = np.where(y == 1, 0.75, 0.25)
    ones = np.flatnonzero(y == 1)
    segment = np.full(64, "mixed")
    segment[ones[:30]] = "a_ones"  # 30 rows of class 1 only, checked first; "mixed" holds 32 zeros and 2 ones
    result = compare_to_champion(y, y, y, task="classification", metric="roc_auc", cfg=GatesConfig(test="none"),
                                 proba_champion=proba, proba_challenger=proba, segments={"part": list(segment)})
    assert [c["name"] for c in result.checks] == ["beats_champion", "segment:part=mixed"]


def test_planning_variance_is_clamped_to_a_rate_and_a_floor() -> None:
    assert paired_accuracy_variance(0.25) == 0.375
    assert paired_accuracy_variance(-0.5) == 1e-4 and paired_accuracy_variance(1.5) == 1e-4
    assert paired_accuracy_variance(0.5) == 0.5
    with pytest.raises(ConfigError) as raised:
        noninferiority_rows(0.0, alpha=0.05, power=0.8, variance=0.32)
    assert str(raised.value) == "gates.non_inferiority_margin must be above 0 to size a holdout for it"
    z = norm.isf(0.05) + norm.ppf(0.8)
    assert noninferiority_rows(0.05, alpha=0.05, power=0.8, variance=0.25) == math.ceil(z * z * 0.25 / 0.0025)


def test_f1_is_resampled_replicate_by_replicate() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    old = np.where(rng.random(400) < 0.3, 1 - y, y)
    new = np.where(rng.random(400) < 0.2, 1 - y, y)
    result = compare_to_champion(y, old, new, task="classification", metric="f1", cfg=GatesConfig(n_bootstrap=200))
    # each replicate has its own F1: the interval has a width and holds the point improvement
    assert result.ci_low is not None and result.ci_high is not None
    assert result.ci_low < result.delta < result.ci_high


def test_f1_of_a_segment_without_the_positive_class_is_zero_for_both() -> None:
    y = np.array([0, 1] * 32)
    segment = np.where(y == 1, "ones", "zeros")
    result = compare_to_champion(y, y, y, task="classification", metric="f1", cfg=GatesConfig(test="none"),
                                 segments={"part": list(segment)})
    zeros = next(c for c in result.checks if c["name"] == "segment:part=zeros")
    assert zeros["value"] == 0.0 and zeros["passed"] is True
    assert zeros["detail"].startswith("segment part=zeros (32 rows): f1 0.0000 (challenger) vs 0.0000 (champion), ")


def test_the_bootstrap_draws_every_row_and_caps_only_looped_metrics() -> None:
    # the challenger differs from the champion on row 0 alone: only resamples that draw it show a gain
    one = compare_to_champion(Y, np.where(np.arange(N) == 0, 1 - Y, Y), Y, task="classification", metric="accuracy",
                              cfg=GatesConfig(n_bootstrap=1200))
    assert one.ci_high is not None and one.ci_high > 0
    assert one.details == {"replicates": 1200}  # accuracy is vectorised: no cap
    # a refresh identical to its champion: no replicate is below 0, nothing shows it worse
    same = compare_to_champion(Y, Y, Y, task="classification", metric="accuracy", cfg=GatesConfig(n_bootstrap=199),
                               non_inferiority_margin=0.02, refresh=True)
    assert same.p_value == 1.0 and same.passed


def test_roc_auc_is_resampled_at_most_a_thousand_times() -> None:
    y = np.array([0, 1] * 32)
    proba = np.where(y == 1, 0.75, 0.25)
    result = compare_to_champion(y, y, y, task="classification", metric="roc_auc", cfg=GatesConfig(n_bootstrap=1001),
                                 proba_champion=proba, proba_challenger=proba)
    assert result.details == {"replicates": 1000}


def test_a_holdout_of_one_class_cannot_be_resampled_for_roc_auc() -> None:
    y = np.zeros(32, dtype=int)
    with pytest.raises(DataError) as raised:
        compare_to_champion(y, y, y, task="classification", metric="roc_auc", cfg=GatesConfig(n_bootstrap=100),
                            proba_champion=np.full(32, 0.25), proba_challenger=np.full(32, 0.25), classes=[0, 1])
    assert str(raised.value) == "no bootstrap resample of the holdout could be scored: the holdout needs both classes"


def test_multiclass_roc_auc_is_one_versus_rest() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y = np.array([0, 1, 2] * 20)
    proba = rng.dirichlet([1, 1, 1], size=60)
    proba[np.arange(60), y] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    result = compare_to_champion(y, proba.argmax(axis=1), proba.argmax(axis=1), task="classification",
                                 metric="roc_auc", cfg=GatesConfig(test="none"), proba_champion=proba,
                                 proba_challenger=proba)
    assert result.champion_metric == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))


def test_r2_is_resampled_replicate_by_replicate() -> None:
    rng = np.random.default_rng(11)
    y = rng.normal(size=200)
    old, new = y + rng.normal(scale=0.8, size=200), y + rng.normal(scale=0.5, size=200)
    result = compare_to_champion(y, old, new, task="regression", metric="r2", cfg=GatesConfig(n_bootstrap=300))
    assert result.ci_low is not None and result.ci_high is not None
    assert result.ci_low < result.delta < result.ci_high and result.ci_low > -1 and result.ci_high < 1


def test_roc_auc_replicates_after_a_one_class_resample_are_still_scored() -> None:
    # one positive row in 30: about a third of the resamples miss it and cannot be scored,
    # the others (1 - (29/30)^30, about 64 %) are
    y = np.zeros(30, dtype=int)
    y[7] = 1
    proba = np.where(y == 1, 0.75, 0.25)
    result = compare_to_champion(y, y, y, task="classification", metric="roc_auc", cfg=GatesConfig(n_bootstrap=200),
                                 proba_champion=proba, proba_challenger=proba)
    assert 100 < result.details["replicates"] < 200
