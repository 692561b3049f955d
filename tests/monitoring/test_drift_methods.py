from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelpilot.errors import ConfigError, DataError
from modelpilot.monitoring import (
    DRIFT_METHODS,
    KS,
    PSI,
    AutoDrift,
    Chi2,
    JensenShannon,
    Wasserstein,
    build_reference,
    get_drift_method,
)
from modelpilot.testing.drift_checks import DRIFT_CHECKS, check_drift_method

METHODS = sorted(DRIFT_METHODS)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("check", DRIFT_CHECKS, ids=lambda c: c.__name__)
def test_conformance_kit(name: str, check) -> None:  # type: ignore[no-untyped-def]
    check(get_drift_method(name))


def test_kit_catches_a_broken_method() -> None:
    class AlwaysDrifts(PSI):
        name = "always"
        default_threshold = -1.0  # every PSI >= -1, so identical data "drifts"

    with pytest.raises(AssertionError, match="identical data flagged"):
        check_drift_method(AlwaysDrifts())


@pytest.mark.parametrize("name", METHODS)
def test_each_method_flags_a_shifted_numeric_column_only(name: str, rng) -> None:  # type: ignore[no-untyped-def]
    ref = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(size=4000)})
    cur = pd.DataFrame({"a": rng.normal(1.0, 1.0, 4000), "b": rng.normal(size=4000)})
    method = get_drift_method(name)
    res = method.score(method.fit(ref), cur)
    assert res["a"].drifted and not res["b"].drifted
    assert not any(r.drifted for r in method.score(method.fit(ref), ref).values())


def test_chi2_on_categoricals(rng) -> None:  # type: ignore[no-untyped-def]
    ref = pd.DataFrame({"c": rng.choice(["x", "y", "z"], 5000, p=[0.5, 0.3, 0.2])})
    moved = pd.DataFrame({"c": rng.choice(["x", "y", "z"], 5000, p=[0.4, 0.4, 0.2])})
    same = pd.DataFrame({"c": rng.choice(["x", "y", "z"], 5000, p=[0.5, 0.3, 0.2])})
    chi2 = Chi2()
    profile = chi2.fit(ref)
    res = chi2.score(profile, moved)["c"]
    assert res.method == "chi2" and res.drifted and res.p_value is not None
    assert res.p_value < 1e-10 and res.statistic > 100
    assert not chi2.score(profile, same)["c"].drifted
    # the statistic matches scipy's test of homogeneity on the same counts
    from scipy.stats import chi2_contingency

    table = [ref["c"].value_counts().sort_index(), moved["c"].value_counts().sort_index()]
    expected = chi2_contingency(np.array(table), correction=False)
    assert res.statistic == pytest.approx(expected.statistic, rel=1e-9)


def test_ks_matches_scipy_on_small_reference(rng) -> None:  # type: ignore[no-untyped-def]
    # with <= 2000 reference values the profile holds them all, so KS is close to exact
    ref, cur = rng.normal(size=1500), rng.normal(0.2, 1.0, 1500)
    from scipy.stats import ks_2samp

    res = KS().score(KS().fit(pd.DataFrame({"x": ref})), pd.DataFrame({"x": cur}))["x"]
    exact = ks_2samp(ref, cur)
    assert res.statistic == pytest.approx(exact.statistic, abs=2e-3)
    assert res.p_value == pytest.approx(exact.pvalue, rel=0.3)


def test_wasserstein_is_normalised_and_close_to_scipy(rng) -> None:  # type: ignore[no-untyped-def]
    ref, cur = rng.normal(5, 3, 50_000), rng.normal(5.75, 3, 50_000)
    from scipy.stats import wasserstein_distance

    w = Wasserstein().score(Wasserstein().fit(pd.DataFrame({"x": ref})),
                            pd.DataFrame({"x": cur}))["x"]
    assert w.statistic == pytest.approx(wasserstein_distance(ref, cur) / ref.std(), abs=0.01)
    assert w.statistic == pytest.approx(0.25, abs=0.02)  # 0.75 / std 3


def test_psi_smooths_unseen_categories_and_empty_bins(rng) -> None:  # type: ignore[no-untyped-def]
    ref = pd.DataFrame({"c": rng.choice(["a", "b"], 2000), "x": rng.uniform(0, 1, 2000)})
    # all current values fall in the top bin; half the categories were never seen
    cur = pd.DataFrame({"c": rng.choice(["a", "new"], 2000), "x": rng.uniform(5, 6, 2000)})
    psi = PSI()
    res = psi.score(psi.fit(ref), cur)
    assert np.isfinite(res["c"].statistic) and res["c"].drifted
    assert np.isfinite(res["x"].statistic) and res["x"].drifted
    # the floor is 1e-4: one full bin against nine empty ones is bounded, not infinite
    assert res["x"].statistic < 20
    # a category unseen in the reference lands in __other__, which the reference had empty
    small = pd.DataFrame({"c": ["a"] * 999 + ["new"], "x": ref["x"][:1000]})
    assert psi.score(psi.fit(ref), small)["c"].statistic > 0


def test_auto_picks_the_measure_by_column_type(rng) -> None:  # type: ignore[no-untyped-def]
    ref = pd.DataFrame({"n": rng.normal(size=3000), "c": rng.choice(["a", "b"], 3000)})
    res = AutoDrift().score(AutoDrift().fit(ref), ref)
    assert res["n"].method == "wasserstein+ks" and res["n"].threshold == 0.1
    assert res["c"].method == "jensenshannon+chi2" and res["c"].threshold == 0.07


def test_auto_guard_blocks_noise_on_small_samples(rng) -> None:  # type: ignore[no-untyped-def]
    ref = pd.DataFrame({"x": rng.normal(size=20_000)})
    profile = AutoDrift().fit(ref)
    # 15 rows: sampling noise alone pushes W/std past 0.1 most of the time; the KS guard
    # keeps false alarms at its significance level (alpha = 0.05)
    noisy = [AutoDrift().score(profile, pd.DataFrame({"x": rng.normal(size=15)}))["x"]
             for _ in range(300)]
    assert np.mean([r.statistic >= 0.1 for r in noisy]) > 0.8
    assert np.mean([r.drifted for r in noisy]) < 0.08
    # the same real 0.25-std shift is not proven on 15 rows but is on 5,000
    small = AutoDrift().score(profile, pd.DataFrame({"x": rng.normal(0.25, 1, 15)}))["x"]
    large = AutoDrift().score(profile, pd.DataFrame({"x": rng.normal(0.25, 1, 5000)}))["x"]
    assert not small.drifted and large.drifted


def test_auto_effect_size_ignores_tiny_significant_shifts(rng) -> None:  # type: ignore[no-untyped-def]
    n = 400_000
    ref = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], n, p=[.5, .5])})
    cur = pd.DataFrame({"x": rng.normal(0.03, 1, n),
                        "c": rng.choice(["a", "b"], n, p=[.52, .48])})
    auto, ks, chi2 = AutoDrift(), KS(), Chi2()
    profile = auto.fit(ref)
    # tests alone call these trivial shifts drift at this size; auto does not
    assert ks.score(profile, cur)["x"].drifted and chi2.score(profile, cur)["c"].drifted
    res = auto.score(profile, cur)
    assert res["x"].p_value < 1e-6 and not res["x"].drifted
    assert res["c"].p_value < 1e-6 and not res["c"].drifted


def test_auto_flags_exactly_the_shifted_columns_at_100k() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "benchmarks" / "bench_drift.py"
    spec = importlib.util.spec_from_file_location("bench_drift", path)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ref = bench.make_frame(100_000, seed=1, shift=False)
    profile = build_reference(ref, numeric=[f"n{i}" for i in range(20)],
                              categorical=[f"c{j}" for j in range(5)])
    auto = AutoDrift()
    drifted = auto.score(profile, bench.make_frame(100_000, seed=3, shift=True))
    clean = auto.score(profile, bench.make_frame(100_000, seed=2, shift=False))
    assert sorted(c for c, r in drifted.items() if r.drifted) == sorted(
        bench.SHIFTED_NUMERIC + bench.SHIFTED_CATEGORICAL)
    assert not any(r.drifted for r in clean.values())


def test_auto_correction_and_threshold_override(rng) -> None:  # type: ignore[no-untyped-def]
    ref = pd.DataFrame({"x": rng.normal(size=5000)})
    cur = pd.DataFrame({"x": rng.normal(0.25, 1, 5000)})
    assert not AutoDrift(threshold=0.5).score(AutoDrift().fit(ref), cur)["x"].drifted
    with pytest.raises(DataError, match="correction='holm' is not known"):
        AutoDrift(correction="holm").score(AutoDrift().fit(ref), cur)


def test_methods_only_store_their_parameters() -> None:
    m = JensenShannon(threshold=0.2, bins=12)
    assert vars(m) == {"threshold": 0.2, "bins": 12}
    assert "threshold=0.2" in repr(m)


def test_unknown_method_and_missing_columns(rng) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="unknown drift method 'kl'.*one of"):
        get_drift_method("kl")
    profile = PSI().fit(pd.DataFrame({"x": rng.normal(size=100)}))
    with pytest.raises(DataError, match=r"current data lacks columns \['x'\]"):
        PSI().score(profile, pd.DataFrame({"y": [1.0]}))
    with pytest.raises(DataError, match=r"columns \['z'\] are not in the reference profile"):
        PSI().score(profile, pd.DataFrame({"x": [1.0]}), columns=["z"])
