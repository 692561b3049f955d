"""The gate after a located change: not worse than the stale champion is enough."""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot.config import GatesConfig
from modelpilot.errors import ConfigError
from modelpilot.policy.compare import (
    compare_to_champion,
    noninferiority_rows,
    paired_accuracy_variance,
)


def _pair(n: int, acc_old: float, acc_new: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.where(rng.random(n) < acc_old, y, 1 - y), np.where(rng.random(n) < acc_new, y, 1 - y)


@pytest.mark.parametrize("test", ["bootstrap", "mcnemar"])
def test_an_equal_model_passes_non_inferiority_on_a_holdout_sized_for_power(test: str) -> None:
    cfg = GatesConfig(test=test)
    n = noninferiority_rows(cfg.non_inferiority_margin, alpha=cfg.alpha, power=cfg.power,
                            variance=paired_accuracy_variance(0.2))
    passed, superior = 0, 0
    for seed in range(30):
        y, old, new = _pair(n, 0.8, 0.8, seed)
        kw = {"task": "classification", "metric": "accuracy", "cfg": cfg, "seed": seed}
        ni = compare_to_champion(y, old, new, non_inferiority_margin=cfg.non_inferiority_margin, **kw)
        passed += ni.passed
        superior += compare_to_champion(y, old, new, **kw).passed
        assert ni.test.endswith("non-inferiority") and ni.details["margin"] == pytest.approx(-0.02)
        assert [c["name"] for c in ni.checks][:2] == ["not_worse", "significance"]
    # planned power 0.8 (independent errors): about 24 of 30 pass; the superiority test
    # rejects a tie in about 95% of holdouts
    assert passed >= 19, passed
    assert superior <= 4, superior


def test_a_clearly_worse_model_fails_non_inferiority_with_the_reason() -> None:
    y, old, new = _pair(3000, 0.85, 0.78, seed=1)
    result = compare_to_champion(y, old, new, task="classification", metric="accuracy", cfg=GatesConfig(),
                                 non_inferiority_margin=0.02)
    assert not result.passed and result.p_value is not None and result.p_value > 0.5
    assert any("non-inferiority after a change" in r for r in result.reasons)


def test_for_error_metrics_the_margin_is_relative_to_the_champion() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(100.0, 20.0, 2000)
    old = y + rng.normal(0, 10.0, 2000)
    new = y + rng.normal(0, 10.05, 2000)  # half a percent worse
    result = compare_to_champion(y, old, new, task="regression", metric="rmse", cfg=GatesConfig(),
                                 non_inferiority_margin=0.05)
    assert result.details["margin"] == pytest.approx(-0.05 * result.champion_metric)
    assert result.passed


def test_sizing_needs_a_margin() -> None:
    assert noninferiority_rows(0.02, alpha=0.05, power=0.8, variance=0.32) > noninferiority_rows(
        0.04, alpha=0.05, power=0.8, variance=0.32)
    with pytest.raises(ConfigError, match="non_inferiority_margin"):
        noninferiority_rows(0.0, alpha=0.05, power=0.8, variance=0.32)
