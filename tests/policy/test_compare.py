"""The champion comparison gate: noise does not promote, a real gain does, segments and
margins hold, error metrics point the right way, and the metrics agree with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from modelpilot.config import GatesConfig
from modelpilot.errors import ConfigError, DataError
from modelpilot.metrics import higher_is_better
from modelpilot.policy.compare import compare_to_champion


def classifier_predictions(n: int, acc_old: float, acc_new: float, seed: int) -> tuple[np.ndarray, ...]:
    """Labels and two sets of predictions wrong at independent random rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    old = np.where(rng.random(n) < acc_old, y, 1 - y)
    new = np.where(rng.random(n) < acc_new, y, 1 - y)
    return y, old, new


def probabilities(y: np.ndarray, signal: float, seed: int) -> np.ndarray:
    """Positive-class probabilities that separate the classes by ``signal``."""
    rng = np.random.default_rng(seed)
    logits = signal * (2 * y - 1) + rng.normal(0, 1, len(y))
    return 1 / (1 + np.exp(-logits))


@pytest.mark.parametrize("test", ["bootstrap", "mcnemar"])
def test_noise_does_not_promote(test: str) -> None:
    cfg = GatesConfig(test=test, n_bootstrap=500)
    passed = 0
    for seed in range(40):
        y, old, new = classifier_predictions(1000, 0.8, 0.8, seed)
        passed += compare_to_champion(y, old, new, task="classification", metric="accuracy", cfg=cfg, seed=seed).passed
    assert passed <= 4  # about alpha = 5% expected; the vast majority is rejected


@pytest.mark.parametrize("test", ["bootstrap", "mcnemar"])
def test_a_clearly_better_challenger_passes(test: str) -> None:
    y, old, new = classifier_predictions(2000, 0.80, 0.85, seed=1)
    result = compare_to_champion(y, old, new, task="classification", metric="accuracy", cfg=GatesConfig(test=test))
    assert result.passed and result.reasons == []
    assert result.delta == pytest.approx(np.mean(new == y) - np.mean(old == y))
    assert result.p_value is not None and result.p_value < 0.05
    assert result.ci_low is not None and result.ci_high is not None and 0 < result.ci_low < result.delta < result.ci_high
    assert [c["name"] for c in result.checks] == ["beats_champion", "significance"]


def test_identical_models_are_rejected() -> None:
    y, old, _ = classifier_predictions(500, 0.8, 0.8, seed=2)
    result = compare_to_champion(y, old, old.copy(), task="classification", metric="accuracy", cfg=GatesConfig())
    assert not result.passed and result.p_value == 1.0
    assert any("needs more than 0.0000" in r for r in result.reasons)


def test_the_margin_must_be_beaten_significantly() -> None:
    y, old, new = classifier_predictions(2000, 0.80, 0.85, seed=1)
    result = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                 cfg=GatesConfig(min_improvement=0.08))
    assert not result.passed
    assert any("needs more than 0.0800" in r for r in result.reasons)
    assert any(r.startswith("bootstrap test: p=") for r in result.reasons)
    # a margin the gain clears by far passes
    assert compare_to_champion(y, old, new, task="classification", metric="accuracy",
                               cfg=GatesConfig(min_improvement=0.01)).passed


def test_point_estimate_only_when_the_test_is_none() -> None:
    y, old, new = classifier_predictions(1000, 0.80, 0.81, seed=3)
    result = compare_to_champion(y, old, new, task="classification", metric="accuracy", cfg=GatesConfig(test="none"))
    assert result.p_value is None and result.ci_low is None
    assert result.passed == (result.delta > 0)


def test_mcnemar_p_value_is_the_exact_binomial_on_discordant_pairs() -> None:
    y, old, new = classifier_predictions(800, 0.80, 0.84, seed=4)
    result = compare_to_champion(y, old, new, task="classification", metric="accuracy", cfg=GatesConfig(test="mcnemar"))
    b = int(np.sum((old == y) & (new != y)))
    c = int(np.sum((old != y) & (new == y)))
    assert result.details == {"champion_only_right": b, "challenger_only_right": c}
    assert result.p_value == pytest.approx(binomtest(c, b + c, 0.5, alternative="greater").pvalue)


def test_mcnemar_needs_accuracy() -> None:
    y = np.linspace(0, 1, 100)
    with pytest.raises(ConfigError, match="mcnemar .* needs metric accuracy.*gates.test: bootstrap"):
        compare_to_champion(y, y, y, task="regression", metric="rmse", cfg=GatesConfig(test="mcnemar"))


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_error_metrics_are_lower_is_better(metric: str) -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(10, 3, 1500)
    worse = y + rng.normal(0, 2.0, len(y))
    better = y + rng.normal(0, 1.5, len(y))
    assert not higher_is_better(metric)
    up = compare_to_champion(y, worse, better, task="regression", metric=metric, cfg=GatesConfig())
    assert up.passed and up.delta > 0 and up.challenger_metric < up.champion_metric
    down = compare_to_champion(y, better, worse, task="regression", metric=metric, cfg=GatesConfig())
    assert not down.passed and down.delta < 0


def test_segment_regression_rejects_and_names_the_segment() -> None:
    y, old, new = classifier_predictions(3000, 0.80, 0.95, seed=6)
    region = np.array(["north", "south", "east"])[np.arange(3000) % 3]
    region[:10] = "tiny"  # a segment of 10 rows says nothing and is skipped
    south = np.flatnonzero(region == "south")
    new = new.copy()
    new[south] = np.where(np.random.default_rng(7).random(len(south)) < 0.70, y[south], 1 - y[south])
    result = compare_to_champion(y, old, new, task="classification", metric="accuracy",
                                 cfg=GatesConfig(max_segment_regression=0.05), segments={"region": region})
    assert not result.passed
    [reason] = result.reasons
    assert reason.startswith("segment region=south (") and "allowed 0.0500" in reason
    old_acc, new_acc = np.mean(old[south] == y[south]), np.mean(new[south] == y[south])
    assert f"{new_acc:.4f} (challenger) vs {old_acc:.4f} (champion)" in reason
    names = {c["name"] for c in result.checks}
    assert {"segment:region=north", "segment:region=east", "segment:region=south"} <= names
    assert "segment:region=tiny" not in names


def test_segment_tolerance_is_relative_for_error_metrics() -> None:
    # house prices: a challenger 3 % worse on one segment is within a 5 % tolerance, 8 % is not
    rng = np.random.default_rng(11)
    n = 3000
    y = rng.normal(300_000, 80_000, n)
    region = np.array(["north", "south"])[np.arange(n) % 2]
    noise = rng.normal(0, 1, n)
    champion = y + 20_000 * noise
    south = region == "south"
    for factor, passes in ((1.03, True), (1.08, False)):
        challenger = np.where(south, y + 20_000 * factor * noise, y + 10_000 * noise)
        result = compare_to_champion(y, champion, challenger, task="regression", metric="rmse",
                                     cfg=GatesConfig(max_segment_regression=0.05), segments={"region": region})
        [check] = [c for c in result.checks if c["name"] == "segment:region=south"]
        assert check["value"] == pytest.approx(factor - 1, abs=1e-9)
        assert check["passed"] is passes and result.passed is passes
        if not passes:
            assert f"{(factor - 1) * 100:.1f} % worse, allowed 5.0 %" in result.reasons[0]


def test_log_loss_and_roc_auc_use_probabilities() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 1500)
    p_old, p_new = probabilities(y, 0.6, 9), probabilities(y, 1.5, 10)
    cfg = GatesConfig(n_bootstrap=200)
    for metric in ("log_loss", "roc_auc"):
        result = compare_to_champion(y, (p_old > 0.5).astype(int), (p_new > 0.5).astype(int), task="classification",
                                     metric=metric, cfg=cfg, proba_champion=p_old, proba_challenger=p_new)
        assert result.passed, result.reasons
    auc = compare_to_champion(y, y, y, task="classification", metric="roc_auc", cfg=cfg,
                              proba_champion=p_old, proba_challenger=p_new)
    assert auc.champion_metric == pytest.approx(skm.roc_auc_score(y, p_old))
    with pytest.raises(ConfigError, match="needs predicted probabilities"):
        compare_to_champion(y, y, y, task="classification", metric="log_loss", cfg=cfg)


def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(11)
    labels = np.array(["a", "b", "c"])
    y = labels[rng.integers(0, 3, 600)]
    old = np.where(rng.random(600) < 0.7, y, labels[rng.integers(0, 3, 600)])
    proba = rng.dirichlet(np.ones(3), 600)
    cfg = GatesConfig(test="none")
    f1 = compare_to_champion(y, old, y, task="classification", metric="f1", cfg=cfg)
    assert f1.champion_metric == pytest.approx(skm.f1_score(y, old, average="macro"))
    ll = compare_to_champion(y, old, y, task="classification", metric="log_loss", cfg=cfg,
                             proba_champion=proba, proba_challenger=proba, classes=labels)
    assert ll.champion_metric == pytest.approx(skm.log_loss(y, proba, labels=labels))
    yb, ob, _ = classifier_predictions(500, 0.8, 0.8, 12)
    binary = compare_to_champion(yb, ob, yb, task="classification", metric="f1", cfg=cfg)
    assert binary.champion_metric == pytest.approx(skm.f1_score(yb, ob))
    yr = rng.normal(0, 1, 400)
    pr = yr + rng.normal(0, 0.5, 400)
    for metric, fn in (("rmse", skm.root_mean_squared_error), ("mae", skm.mean_absolute_error), ("r2", skm.r2_score)):
        result = compare_to_champion(yr, pr, yr, task="regression", metric=metric, cfg=cfg)
        assert result.champion_metric == pytest.approx(fn(yr, pr))


def test_bad_inputs_say_how_to_fix_them() -> None:
    y = np.zeros(100, dtype=int)
    with pytest.raises(DataError, match="100 labels but 99 champion"):
        compare_to_champion(y, y[:99], y, task="classification", metric="accuracy", cfg=GatesConfig())
    with pytest.raises(DataError, match="only 10 labelled holdout rows.*holdout_fraction"):
        compare_to_champion(y[:10], y[:10], y[:10], task="classification", metric="accuracy", cfg=GatesConfig())
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        compare_to_champion(y, y, y, task="classification", metric="auc", cfg=GatesConfig())


def test_result_is_json_ready() -> None:
    import json

    y, old, new = classifier_predictions(400, 0.8, 0.9, seed=13)
    result = compare_to_champion(y, old, new, task="classification", metric="accuracy", cfg=GatesConfig())
    assert json.loads(json.dumps(result.to_dict()))["passed"] == result.passed
    assert result.summary.startswith("challenger beats champion: accuracy")
