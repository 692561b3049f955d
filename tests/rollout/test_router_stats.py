"""The pure router and the statistics behind the A/B decision."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from modelpilot.rollout import stats
from modelpilot.rollout.router import bucket, challenger_mask, route
from modelpilot.rollout.state import RolloutState


def state(share: float, *, shadow: bool = False, rid: str = "r1") -> RolloutState:
    return RolloutState(model="m", id=rid, strategy="ab", candidate=2, champion=1, started_at="", log_since="",
                        share=share, shadow=shadow)


def test_route_is_a_pure_sticky_function_of_key_and_rollout() -> None:
    keys = [f"customer-{i}" for i in range(5000)]
    s = state(0.3)
    first = [route(k, s) for k in keys]
    assert first == [route(k, s) for k in keys]
    mask = challenger_mask(keys, s)
    assert mask.tolist() == [r.arm == "challenger" for r in first]
    assert sps.binomtest(int(mask.sum()), len(keys), 0.3).pvalue > 0.001
    # a new rollout reshuffles; a bigger share keeps every key already on the challenger
    assert challenger_mask(keys, state(0.3, rid="r2")).tolist() != mask.tolist()
    wider = challenger_mask(keys, state(0.6))
    assert wider[mask].all()


def test_each_arm_is_answered_by_its_own_version() -> None:
    s = state(0.3)
    routes = [route(f"customer-{i}", s) for i in range(200)]
    assert {(r.primary_version, r.shadow_version) for r in routes if r.arm == "champion"} == {(1, None)}
    assert {(r.primary_version, r.shadow_version) for r in routes if r.arm == "challenger"} == {(2, None)}
    # a key goes to the challenger exactly when its bucket is below the share
    assert [r.arm == "challenger" for r in routes] == [bucket(f"customer-{i}", "r1") < 0.3 for i in range(200)]
    # nothing to the challenger at share 0, everything at share 1; a decided rollout routes to the champion given
    assert {route(f"k{i}", state(0.0)) for i in range(50)} == {(1, None, "champion")}
    assert {route(f"k{i}", state(1.0)) for i in range(50)} == {(2, None, "challenger")}
    assert route("k", state(1.0).decided("promoted", "done"), champion=2) == (2, None, "champion")


def test_shadow_and_no_rollout_routes() -> None:
    assert route("k", state(0.0, shadow=True)) == (1, 2, "champion")
    assert route("k", None, champion=7) == (7, None, "champion")
    assert 0.0 <= bucket("k", "salt") < 1.0


def test_two_proportion_ztest_matches_the_chi_square_test() -> None:
    r = stats.two_proportion_ztest(420, 1000, 470, 1000, alpha=0.05)
    chi2 = sps.chi2_contingency([[420, 580], [470, 530]], correction=False)
    assert r.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert r.effect == pytest.approx(0.05)
    assert r.ci_low < r.effect < r.ci_high


def test_welch_ttest_and_sample_sizes() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 400), rng.normal(0.3, 2, 300)
    r = stats.welch_ttest(a, b)
    assert r.p_value == pytest.approx(sps.ttest_ind(b, a, equal_var=False).pvalue)
    assert r.ci_low < r.effect < r.ci_high
    n = stats.sample_size_proportions(0.7, 0.05, alpha=0.05, power=0.8)
    assert 1200 < n < 1400  # the textbook figure for 70% -> 75% is ~1250 per arm
    assert stats.sample_size_means(1.0, 0.2, alpha=0.05, power=0.8) == pytest.approx(393, abs=2)


def test_every_test_reports_both_arms_sizes_and_values() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, 40), rng.normal(1.5, 2.0, 50)
    welch = stats.welch_ttest(a, b, alpha=0.1)
    assert (welch.test, welch.n_champion, welch.n_challenger) == ("welch_t", 40, 50)
    assert (welch.champion_value, welch.challenger_value) == (pytest.approx(a.mean()), pytest.approx(b.mean()))
    assert welch.effect == pytest.approx(b.mean() - a.mean())
    ci = sps.ttest_ind(b, a, equal_var=False).confidence_interval(0.9)
    assert (welch.ci_low, welch.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    z = stats.two_proportion_ztest(30, 40, 45, 50, alpha=0.05)
    assert (z.test, z.n_champion, z.n_challenger) == ("two_proportion_z", 40, 50)
    assert (z.champion_value, z.challenger_value) == (0.75, 0.9)
    se = np.sqrt(0.75 * 0.25 / 40 + 0.9 * 0.1 / 50)
    assert (z.ci_low, z.ci_high) == (pytest.approx(0.15 - sps.norm.ppf(0.975) * se),
                                     pytest.approx(0.15 + sps.norm.ppf(0.975) * se))
    seq = stats.msprt(a, b, tau=0.5)
    assert (seq.test, seq.n_champion, seq.n_challenger) == ("msprt", 40, 50)
    assert (seq.champion_value, seq.challenger_value) == (pytest.approx(a.mean()), pytest.approx(b.mean()))


def test_msprt_stays_valid_under_continuous_monitoring_and_finds_real_effects() -> None:
    rng = np.random.default_rng(1)
    false_alarms = 0
    for _ in range(200):  # A/A tests checked after every 50 rows per arm
        a, b = rng.binomial(1, 0.5, 2000).astype(float), rng.binomial(1, 0.5, 2000).astype(float)
        p = 1.0
        for n in range(50, 2001, 50):
            p = stats.msprt(a[:n], b[:n], tau=0.05, previous_p=p).p_value
        false_alarms += p < 0.05
    assert false_alarms / 200 <= 0.05 + 0.03
    a, b = rng.binomial(1, 0.5, 3000).astype(float), rng.binomial(1, 0.58, 3000).astype(float)
    assert stats.msprt(a, b, tau=0.05).p_value < 0.05
