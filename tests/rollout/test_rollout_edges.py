"""The rollout decisions at their edges, each checked against numbers computed from the inputs.

The status summary counts down from the configured hold, experiment period and label
target on an injected clock; the statistics handle degenerate arms; the routing masks
agree with the per-key rule; the servability probe names what is wrong with a version; A/B
on rewards plans its sample from their spread and rejects an inconclusive test; shadow
rejects a failing challenger, compares regressors on their values and probability metrics on
logged probabilities, and waits when the labels cannot be compared yet. Prediction-log rows
are the real models' answers, written by the real log writer.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rollout_helpers import (
    FEATURES,
    MODEL,
    REnv,
    log_answers,
    log_feedback,
    prediction_log,
    traffic,
)
from scipy import stats as sps
from serving_helpers import NUMERIC, SIGNATURE, make_frame, make_pipeline
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeRegressor

from modelpilot.artifacts import ArtifactStore, save_model
from modelpilot.config import ABConfig, PilotConfig, ShadowConfig
from modelpilot.errors import ConfigError, VersionNotServable
from modelpilot.policy.compare import MIN_HOLDOUT_ROWS
from modelpilot.rollout import get_strategy, stats
from modelpilot.rollout import state as st
from modelpilot.rollout.ab import MIN_ROWS_PER_ARM, ab_test, arm_values
from modelpilot.rollout.canary import MIN_HEALTH_ROWS, latency_check
from modelpilot.rollout.probe import _problem, check_servable, probe_frame
from modelpilot.rollout.router import bucket, challenger_mask, retired_mask, route
from modelpilot.serving.predlog import PredictionBatch
from modelpilot.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)

# limits far from anything these logs measure: the tests are about one decision each
CALM = {"max_latency_p99_ms": 60_000, "max_divergence": 1.0, "min_labelled": 100_000}


# --------------------------------------------------------------------------- status summary


def _save(store: Store, **changes: Any) -> st.RolloutState:
    state, revision = st.load(store, MODEL)
    assert state is not None
    new = state.evolve(**changes)
    st.save(store, new, revision)
    return new


def test_traffic_gives_everything_to_a_first_model_and_nothing_after_the_decision() -> None:
    first = st.RolloutState(model="m", id="r", strategy="canary", candidate=1, champion=None,
                            started_at="", log_since="", share=0.05)
    assert first.traffic() == {"1": 1.0}
    running = first.evolve(candidate=3, champion=2, share=0.25)
    assert running.traffic() == {"2": 0.75, "3": 0.25}
    assert running.decided("rolled_back", "unhealthy", now=T0).traffic() == {}


def test_describe_counts_a_canary_step_down_from_its_own_start(renv: REnv) -> None:
    hold, hold_requests = 3600.0, 50
    renv.configure({"strategy": "canary", "canary": {"steps": [10.0, 50.0, 100.0], "hold_requests": hold_requests,
                                                     "hold_duration": "1h"}})
    assert st.describe(renv.store, MODEL, renv.cfg, now=T0) is None  # never had a rollout
    get_strategy("canary", cfg=renv.cfg, artifacts=renv.artifacts).start(
        renv.store, MODEL, renv.healthy, champion=renv.champion, reason="t", numbers={}, now=T0)

    now = T0 + timedelta(minutes=20)
    doc = st.describe(renv.store, MODEL, renv.cfg, now=now)
    assert doc is not None
    assert doc["steps"] == [10.0, 50.0, 100.0] and doc["step"] == 0
    assert doc["traffic"] == {str(renv.champion): 0.9, str(renv.healthy): 0.1}
    assert doc["time_left_seconds"] == pytest.approx(hold - (now - T0).total_seconds())
    assert doc["requests_left"] == hold_requests

    # the second step started an hour after the rollout: its hold counts from there
    step_start = T0 + timedelta(hours=1)
    _save(renv.store, step=1, share=0.5, step_started_at=step_start.isoformat(), extra={"step_requests": 20})
    now = step_start + timedelta(minutes=10)
    doc = st.describe(renv.store, MODEL, renv.cfg, now=now)
    assert doc is not None
    assert doc["time_left_seconds"] == pytest.approx(hold - (now - step_start).total_seconds())
    assert doc["requests_left"] == hold_requests - 20
    # past the hold and the request count: zero, never negative
    _save(renv.store, extra={"step_requests": hold_requests + 7})
    doc = st.describe(renv.store, MODEL, renv.cfg, now=step_start + timedelta(seconds=hold + 1))
    assert doc is not None and (doc["time_left_seconds"], doc["requests_left"]) == (0.0, 0)
    # without the configuration nothing is counted down
    bare = st.describe(renv.store, MODEL, now=now)
    assert bare is not None and (bare["time_left_seconds"], bare["requests_left"]) == (None, None)


def test_describe_counts_only_the_canary_holds_that_are_configured(renv: REnv) -> None:
    renv.configure({"strategy": "canary", "canary": {"steps": [50.0, 100.0], "hold_requests": None,
                                                     "hold_duration": "10m"}})
    renv.start("canary", renv.healthy)
    state = _save(renv.store, step_started_at=T0.isoformat(), extra={"step_requests": 5})
    doc = st.describe(renv.store, MODEL, renv.cfg, now=T0 + timedelta(minutes=4))
    assert doc is not None and doc["time_left_seconds"] == pytest.approx(360.0) and doc["requests_left"] is None

    renv.configure({"strategy": "canary", "canary": {"steps": [50.0, 100.0], "hold_requests": 30}})
    doc = st.describe(renv.store, MODEL, renv.cfg, now=T0 + timedelta(minutes=4))
    assert doc is not None and doc["time_left_seconds"] is None and doc["requests_left"] == 25

    # a decided rollout has nothing left to wait for
    _, revision = st.load(renv.store, MODEL)
    st.save(renv.store, state.decided("rolled_back", "unhealthy", now=T0), revision)
    doc = st.describe(renv.store, MODEL, renv.cfg, now=T0)
    assert doc is not None and doc["status"] == "rolled_back" and doc["traffic"] == {}
    assert (doc["time_left_seconds"], doc["requests_left"]) == (None, None)


def test_describe_counts_an_ab_experiment_down_from_its_start(renv: REnv) -> None:
    renv.configure({"strategy": "ab", "ab": {"share": 0.2, "max_duration": "2h"}})
    get_strategy("ab", cfg=renv.cfg, artifacts=renv.artifacts).start(
        renv.store, MODEL, renv.healthy, champion=renv.champion, reason="t", numbers={}, now=T0)
    # a later step start must not matter: the experiment period runs from the rollout's start
    _save(renv.store, step_started_at=(T0 + timedelta(hours=1)).isoformat(), extra={"labelled_left": 17})
    now = T0 + timedelta(minutes=90)
    doc = st.describe(renv.store, MODEL, renv.cfg, now=now)
    assert doc is not None and doc["shadow"] is None
    assert doc["time_left_seconds"] == pytest.approx(2 * 3600 - (now - T0).total_seconds())
    assert doc["requests_left"] == 17
    doc = st.describe(renv.store, MODEL, renv.cfg, now=T0 + timedelta(hours=3))
    assert doc is not None and doc["time_left_seconds"] == 0.0

    renv.configure({"strategy": "ab", "ab": {"share": 0.2}})  # no period: no countdown
    doc = st.describe(renv.store, MODEL, renv.cfg, now=now)
    assert doc is not None and doc["time_left_seconds"] is None and doc["requests_left"] == 17


@pytest.mark.parametrize(("labelled", "paired"), [(0, 0), (21, 21), (30, 30), (45, 45), (45, 21)])
def test_describe_counts_the_labelled_pairs_a_shadow_still_needs(renv: REnv, labelled: int, paired: int) -> None:
    min_labelled = 30
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": min_labelled}})
    renv.start("shadow", renv.healthy)
    if labelled:  # what the last tick saw; only labelled rows the champion also answered are compared
        _save(renv.store, arms={"champion": {"requests": 20}, "shadow": {"labelled": labelled, "paired": paired}})
    doc = st.describe(renv.store, MODEL, renv.cfg, now=T0)
    assert doc is not None
    assert doc["shadow"] == renv.healthy and doc["traffic"] == {str(renv.champion): 1.0, str(renv.healthy): 0.0}
    assert doc["requests_left"] == max(0, min_labelled - paired) and doc["time_left_seconds"] is None


def test_describe_of_a_waiting_shadow_agrees_with_its_decision(renv: REnv) -> None:
    min_labelled = 30
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": min_labelled}}, gates={"n_bootstrap": 100})
    renv.start("shadow", renv.healthy)
    rows = traffic(30, seed=33)
    late = rows.iloc[:4]  # answered by the champion before the rollout's log starts
    with prediction_log(renv) as writer:
        writer.log_predictions(PredictionBatch(
            model=MODEL, ids=late["id"].tolist(), version=renv.champion, predictions=np.array(["0"] * 4, dtype=object),
            scores=np.zeros(4), probabilities=None, features={c: late[c].to_numpy() for c in FEATURES},
            ts_us=int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1e6)))
        log_answers(writer, renv, MODEL, renv.champion, rows.iloc[4:])
        log_answers(writer, renv, MODEL, renv.healthy, rows, role="shadow")
        log_feedback(writer, MODEL, rows, rows["churned"])
    decision = renv.advance()
    assert decision.status == "in_progress" and decision.reason == f"shadow: 26 of {min_labelled} labelled pairs"
    doc = st.describe(renv.store, MODEL, renv.cfg)
    assert doc is not None and doc["arms"]["shadow"]["labelled"] == 30
    assert doc["requests_left"] == min_labelled - 26


# --------------------------------------------------------------------------- statistics


def test_two_proportion_ztest_of_arms_without_variance_and_of_empty_arms() -> None:
    for successes in (0, 40):  # every row right (or wrong) in both arms: no difference at all
        r = stats.two_proportion_ztest(successes // 2, 20, successes, 40, alpha=0.05)
        assert (r.effect, r.ci_low, r.ci_high, r.p_value) == (0.0, 0.0, 0.0, 1.0)
        assert not r.significant(0.05)
    for n_a, n_b in ((0, 10), (10, 0)):
        with pytest.raises(ValueError, match="both arms need at least one row"):
            stats.two_proportion_ztest(0, n_a, 0, n_b)


def test_welch_ttest_of_constant_arms_and_of_too_small_arms() -> None:
    same = stats.welch_ttest(np.full(5, 2.0), np.full(3, 2.0))
    assert (same.effect, same.p_value, same.ci_low, same.ci_high) == (0.0, 1.0, 0.0, 0.0)
    apart = stats.welch_ttest(np.full(5, 2.0), np.full(3, 2.5))
    assert (apart.effect, apart.p_value, apart.ci_low, apart.ci_high) == (0.5, 0.0, 0.5, 0.5)
    assert (apart.champion_value, apart.challenger_value, apart.n_champion, apart.n_challenger) == (2.0, 2.5, 5, 3)
    assert apart.significant(0.05)
    for a, b in ((np.array([1.0]), np.ones(5)), (np.ones(5), np.array([]))):
        with pytest.raises(ValueError, match="at least two values per arm"):
            stats.welch_ttest(a, b)


def _textbook_n(p1: float, p2: float, alpha: float, power: float) -> int:
    z_a, z_b = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    p_bar = (p1 + p2) / 2
    n = (z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2
    return math.ceil(n / (p2 - p1) ** 2)


def test_sample_size_at_a_perfect_baseline_plans_for_a_drop_of_the_effect() -> None:
    # no rate above 100 %: the effect is sized downwards from the (clipped) baseline
    top = 1 - 1e-6
    n = stats.sample_size_proportions(1.0, 0.05, alpha=0.05, power=0.8)
    assert n == _textbook_n(top, top - 0.05, 0.05, 0.8)
    assert n == stats.sample_size_proportions(top - 0.05, 0.05, alpha=0.05, power=0.8)
    # an ordinary baseline is sized upwards
    assert stats.sample_size_proportions(0.6, 0.05, alpha=0.05, power=0.8) == _textbook_n(0.6, 0.65, 0.05, 0.8)


def test_msprt_keeps_the_previous_p_value_until_both_arms_have_two_rows() -> None:
    for a, b in ((np.array([1.0]), np.ones(10)), (np.ones(10), np.array([0.0])), (np.array([]), np.array([]))):
        r = stats.msprt(a, b, tau=0.05, previous_p=0.2)
        assert (r.test, r.effect, r.p_value, r.ci_low, r.ci_high) == ("msprt", 0.0, 0.2, -math.inf, math.inf)
        assert (r.n_champion, r.n_challenger) == (len(a), len(b))
        assert (math.isnan(r.champion_value), math.isnan(r.challenger_value)) == (not len(a), not len(b))
    r = stats.msprt(np.array([1.0]), np.array([0.0, 1.0]), tau=0.05)
    assert (r.champion_value, r.challenger_value) == (1.0, 0.5)


# --------------------------------------------------------------------------- routing masks


def _state(share: float, **changes: Any) -> st.RolloutState:
    base = st.RolloutState(model="m", id="r1", strategy="ab", candidate=2, champion=1, started_at="",
                           log_since="", share=share)
    return base.evolve(**changes)


def test_challenger_mask_is_empty_whenever_no_key_goes_to_the_challenger() -> None:
    keys = [f"k{i}" for i in range(200)]
    nobody = [None, _state(0.0), _state(0.5, shadow=True), _state(0.5).decided("rejected", "worse", now=T0)]
    for s in nobody:
        mask = challenger_mask(keys, s)
        assert mask.dtype == bool and mask.shape == (200,) and not mask.any()
        assert all(route(k, s, champion=1).arm == "champion" for k in keys)
    assert challenger_mask(keys, _state(1.0)).all()
    assert all(route(k, _state(1.0)) == (2, None, "challenger") for k in keys)


def test_retired_mask_samples_a_deterministic_fraction_salted_by_the_champion() -> None:
    ids = np.array([f"req-{i}" for i in range(4000)])
    assert retired_mask(ids, 3, 0.0).tolist() == [False] * 4000
    assert retired_mask(ids, 3, 1.0).tolist() == [True] * 4000
    assert retired_mask(np.array([], dtype=object), 3, 0.5).shape == (0,)
    mask = retired_mask(ids, 3, 0.1)
    assert mask.tolist() == [bucket(str(i), "retired-v3") < 0.1 for i in ids]
    assert sps.binomtest(int(mask.sum()), len(ids), 0.1).pvalue > 1e-3
    assert retired_mask(list(ids), 3, 0.1).tolist() == mask.tolist()
    assert retired_mask(ids, 4, 0.1).tolist() != mask.tolist()  # each promotion samples afresh


# --------------------------------------------------------------------------- servability probe


def test_the_probe_rows_cover_ordinary_missing_extreme_and_unknown_values() -> None:
    frame = probe_frame([{"name": "n", "type": "float"}, {"name": "i", "type": "int"},
                         {"name": "x", "type": "number"}, {"name": "flag", "type": "bool"},
                         {"name": "plan", "type": "category"}, {"name": "free"}])
    assert list(frame.columns) == ["n", "i", "x", "flag", "plan", "free"]
    for col in ("n", "i", "x"):
        assert frame[col].dtype == np.float64
        assert frame[col].iloc[[0, 2, 3]].tolist() == [0.0, -1e3, 1e6] and np.isnan(frame[col].iloc[1])
    assert frame["flag"].tolist() == [True, None, False, True]
    for col in ("plan", "free"):
        assert frame[col].isna().tolist() == [False, True, False, False]
        assert frame[col].iloc[[0, 2, 3]].tolist() == ["a", "__unknown__", "b"]


def _numeric(model: Any) -> Pipeline:
    df = make_frame(300, 3)
    target = "spend" if isinstance(model, Ridge) else "churned"
    return Pipeline([("pre", ColumnTransformer([("num", SimpleImputer(), NUMERIC)])), ("model", model)]).fit(
        df[FEATURES], df[target])


def _version(store: Store, artifacts: ArtifactStore, estimator: Any, task: str, classes: list[Any] | None) -> Any:
    record = store.register_version(
        MODEL, run_id=None, artifact_key=save_model(artifacts, estimator), reference_key=None, signature=SIGNATURE,
        task=task, classes=classes, metrics={}, lineage={})
    return store.get_version(MODEL, record.version)


def test_servable_versions_pass_the_probe(renv: REnv, classifiers: list[Pipeline]) -> None:
    check_servable(renv.artifacts, _version(renv.store, renv.artifacts, classifiers[0], "classification", [0, 1]))
    check_servable(renv.artifacts, _version(renv.store, renv.artifacts, make_pipeline("regression"), "regression", None))
    # classes unknown to the record: nothing to check the predictions against
    check_servable(renv.artifacts, _version(renv.store, renv.artifacts, classifiers[1], "classification", None))


def test_the_probe_names_classes_the_version_does_not_have(renv: REnv, classifiers: list[Pipeline]) -> None:
    record = _version(renv.store, renv.artifacts, classifiers[0], "classification", ["no", "yes"])
    predicted = sorted({str(p) for p in classifiers[0].predict(probe_frame(SIGNATURE))})
    says = (f"v{record.version} of 'churn' does not answer a probe prediction sensibly: predicted {predicted}, "
            "not classes of the version (['no', 'yes'])")
    with pytest.raises(VersionNotServable, match=re.escape(says)):
        check_servable(renv.artifacts, record)


def test_the_probe_refuses_probabilities_for_the_wrong_number_of_classes(renv: REnv, classifiers: list[Pipeline]) -> None:
    record = _version(renv.store, renv.artifacts, classifiers[0], "classification", [0, 1, 2])
    with pytest.raises(VersionNotServable, match=r"probabilities of shape \(4, 2\) for 4 rows and 3 classes"):
        check_servable(renv.artifacts, record)


def test_the_probe_refuses_a_model_whose_weights_are_not_numbers(renv: REnv) -> None:
    clf = _numeric(LogisticRegression())
    clf[-1].coef_[:] = np.nan  # a diverged fit: predict still names a class, the probabilities are NaN
    record = _version(renv.store, renv.artifacts, clf, "classification", [0, 1])
    with pytest.raises(VersionNotServable, match="probabilities that are not finite or do not sum to 1"):
        check_servable(renv.artifacts, record)
    reg = _numeric(Ridge())
    reg[-1].coef_[:] = np.nan
    record = _version(renv.store, renv.artifacts, reg, "regression", None)
    with pytest.raises(VersionNotServable, match=f"v{record.version} of 'churn' does not answer a probe prediction "
                       "sensibly: non-finite regression output"):
        check_servable(renv.artifacts, record)


def test_the_probe_refuses_class_labels_from_a_regression_version(renv: REnv) -> None:
    df = make_frame(300, 4)
    labelled = Pipeline([("pre", ColumnTransformer([("num", SimpleImputer(), NUMERIC)])),
                         ("model", LogisticRegression())]).fit(df[FEATURES], df["churned"].map({0: "stay", 1: "churn"}))
    record = _version(renv.store, renv.artifacts, labelled, "regression", None)
    first_two = labelled.predict(probe_frame(SIGNATURE))[:2].tolist()
    with pytest.raises(VersionNotServable, match=re.escape(f"non-numeric regression output ({first_two})")):
        check_servable(renv.artifacts, record)


def test_probe_problems_of_answers_no_sklearn_model_gives(classifiers: list[Pipeline]) -> None:
    X = probe_frame(SIGNATURE)
    predictions = np.asarray(classifiers[0].predict(X))
    record = SimpleNamespace(task="classification", classes=[0, 1])
    assert _problem(predictions, None, record, len(X)) is None  # no predict_proba: the classes suffice
    assert _problem(predictions[:3], None, record, len(X)) == "4 rows gave predictions of shape (3,)"
    assert _problem(np.asarray(1), None, record, len(X)) == "4 rows gave predictions of shape ()"
    halves = np.full((4, 2), 0.5)
    assert _problem(predictions, halves, record, 4) is None
    assert _problem(predictions, halves * 0.9, record, 4) == "probabilities that are not finite or do not sum to 1"
    regression = SimpleNamespace(task="regression", classes=None)
    assert _problem(np.array([1.0, 2.0, 3.0, np.inf]), None, regression, 4) == "non-finite regression output"
    assert _problem(np.array([1, 2, 3, 4]), None, regression, 4) is None


# --------------------------------------------------------------------------- A/B on rewards


def test_ab_test_on_rewards_plans_from_their_spread_and_runs_welch() -> None:
    ab = ABConfig(decide_on="reward", min_detectable_effect=0.5)
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 1.0, 60), rng.normal(1.6, 1.0, 60)
    spread = float(np.concatenate([a, b]).std(ddof=1))
    needed = max(stats.sample_size_means(spread, 0.5, alpha=0.05, power=0.8), MIN_ROWS_PER_ARM)
    assert needed == max(math.ceil(2 * spread**2 * (sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) ** 2 / 0.25), 30)
    few = a[: MIN_ROWS_PER_ARM - 1]  # below any plan
    result, planned = ab_test(ab, "classification", few, b)
    assert result is None and planned == max(stats.sample_size_means(
        float(np.concatenate([few, b]).std(ddof=1)), 0.5, alpha=0.05, power=0.8), MIN_ROWS_PER_ARM)
    result, planned = ab_test(ab, "classification", a, b)
    assert planned == needed and result == stats.welch_ttest(a, b, alpha=0.05)
    # nothing to measure a spread on yet: plan for a spread of 1
    assert ab_test(ab, "regression", np.array([0.0]), np.array([5.0]))[1] == max(
        stats.sample_size_means(1.0, 0.5, alpha=0.05, power=0.8), MIN_ROWS_PER_ARM)


def test_arm_values_are_the_rewards_or_the_labelled_outcomes() -> None:
    rows = pd.DataFrame({"prediction": ["1", "0", "1", "1"], "label": ["1", None, "0", "1"],
                         "reward": [2.5, None, -1.0, 0.0]})
    assert arm_values("reward", rows, "classification", "accuracy").tolist() == [2.5, -1.0, 0.0]
    assert arm_values("metric", rows, "classification", "accuracy").tolist() == [1.0, 0.0, 1.0]


def _ab_on_rewards(renv: REnv, reward_of: Any, n: int = 40) -> Any:
    renv.configure({"strategy": "ab", "ab": {"share": 0.5, "decide_on": "reward", "min_detectable_effect": 1.0},
                    "canary": CALM})
    get_strategy("ab", cfg=renv.cfg, artifacts=renv.artifacts).start(
        renv.store, MODEL, renv.healthy, champion=renv.champion, reason="t", numbers={}, now=T0)
    rows = traffic(2 * n, seed=21)
    champ_rows, chal_rows = rows.iloc[:n], rows.iloc[n:]
    base = np.linspace(0.0, 3.0, n)  # spread ~0.9: the planned sample is the 30-row floor
    with prediction_log(renv) as writer:
        log_answers(writer, renv, MODEL, renv.champion, champ_rows)
        log_answers(writer, renv, MODEL, renv.healthy, chal_rows)
        log_feedback(writer, MODEL, champ_rows, champ_rows["churned"], base)
        log_feedback(writer, MODEL, chal_rows, chal_rows["churned"], reward_of(base))
    decision = get_strategy("ab", cfg=renv.cfg, artifacts=renv.artifacts).advance(
        renv.store, MODEL, now=T0 + timedelta(minutes=1))
    return decision, base, reward_of(base)


def test_ab_on_rewards_rejects_when_the_planned_sample_shows_no_difference(renv: REnv) -> None:
    decision, a, b = _ab_on_rewards(renv, lambda r: r[::-1])  # the same rewards: no effect at all
    needed = max(stats.sample_size_means(float(np.concatenate([a, b]).std(ddof=1)), 1.0, alpha=0.05, power=0.8),
                 MIN_ROWS_PER_ARM)
    expected = stats.welch_ttest(a, b)
    assert not expected.significant(0.05)
    assert decision.status == "rejected"
    assert decision.reason == (f"A/B: no significant improvement; welch_t: effect on reward {expected.effect:+.4f}, "
                               f"p={expected.p_value:.3g} >= 0.05 at the planned sample of {needed} per arm")
    assert decision.numbers["n_required"] == needed and decision.numbers["p_value"] == pytest.approx(expected.p_value)
    assert (decision.numbers["n_champion"], decision.numbers["n_challenger"]) == (len(a), len(b))
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"
    state, _ = st.load(renv.store, MODEL)
    assert state is not None and state.extra["labelled_left"] == 0 and state.extra["n_required"] == needed


def test_ab_on_rewards_promotes_a_challenger_that_earns_more(renv: REnv) -> None:
    decision, a, b = _ab_on_rewards(renv, lambda r: r + 1.0)
    expected = stats.welch_ttest(a, b)
    assert expected.significant(0.05) and expected.effect == pytest.approx(1.0)
    assert decision.status == "promoted", decision.reason
    assert decision.reason.startswith(f"A/B: challenger better; welch_t: effect on reward {expected.effect:+.4f} "
                                      f"(95% CI [{expected.ci_low:+.4f}, {expected.ci_high:+.4f}])")
    assert decision.numbers["test"] == "welch_t"
    assert renv.store.get_alias(MODEL, "champion") == renv.healthy


# --------------------------------------------------------------------------- shadow


@pytest.mark.parametrize(("answered", "failed"), [(0, MIN_HEALTH_ROWS - 1), (18, 2), (17, 3), (0, MIN_HEALTH_ROWS)])
def test_shadow_rejects_a_challenger_failing_on_more_than_the_error_rate(renv: REnv, answered: int, failed: int) -> None:
    max_rate = 0.1
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": 30}, "canary": {"max_error_rate": max_rate}})
    renv.start("shadow", renv.healthy)
    rows = traffic(answered + failed, seed=31)
    with prediction_log(renv) as writer:
        log_answers(writer, renv, MODEL, renv.champion, rows)
        if answered:
            log_answers(writer, renv, MODEL, renv.healthy, rows.iloc[:answered], role="shadow")
        log_answers(writer, renv, MODEL, renv.healthy, rows.iloc[answered:], role="error")
    decision = renv.advance()
    calls = answered + failed
    judged = calls >= MIN_HEALTH_ROWS and failed / calls > max_rate
    if judged:
        assert decision.status == "rejected"
        assert decision.reason == f"shadow challenger failed on {failed} of {calls} calls ({failed / calls:.1%})"
        assert (decision.numbers["errors"], decision.numbers["calls"]) == (failed, calls)
        assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"
    else:
        assert decision.status == "in_progress" and decision.reason == "shadow: 0 of 30 labelled pairs"
        state, _ = st.load(renv.store, MODEL)
        assert state is not None and state.active
        assert state.arms["shadow"]["errors"] == failed and state.arms["shadow"]["requests"] == answered
    assert renv.store.get_alias(MODEL, "champion") == renv.champion


def _stump_regressor() -> Pipeline:
    df = make_frame(400, 5)
    stump = DecisionTreeRegressor(min_samples_split=len(df) + 1)  # one leaf: the mean
    return Pipeline([("pre", ColumnTransformer([("num", SimpleImputer(), NUMERIC)])), ("model", stump)]).fit(
        df[FEATURES], df["spend"])


def test_shadow_compares_regressors_on_their_numeric_predictions(renv: REnv) -> None:
    from serving_helpers import register

    model = "spend"
    champion = register(renv.store, renv.artifacts, model, _stump_regressor())
    better = register(renv.store, renv.artifacts, model, make_pipeline("regression"), champion=False)
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": 40}},
                   evaluation={"metric": "rmse"}, gates={"n_bootstrap": 200})
    strategy = get_strategy("shadow", cfg=renv.cfg, artifacts=renv.artifacts)
    strategy.start(renv.store, model, better, champion=champion, reason="t", numbers={}, now=T0)
    rows = traffic(60, seed=41)
    with prediction_log(renv) as writer:
        old = log_answers(writer, renv, model, champion, rows).labels
        new = log_answers(writer, renv, model, better, rows, role="shadow").labels
        log_feedback(writer, model, rows, rows["spend"])
    decision = strategy.advance(renv.store, model, now=T0 + timedelta(minutes=1))
    y = rows["spend"].to_numpy(dtype=np.float64)
    rmse_old, rmse_new = float(np.sqrt(np.mean((y - old) ** 2))), float(np.sqrt(np.mean((y - new) ** 2)))
    assert rmse_new < rmse_old / 2
    assert decision.status == "promoted", decision.reason
    assert decision.numbers["metric"] == "rmse" and decision.numbers["pairs"] == 60
    assert decision.numbers["champion_metric"] == pytest.approx(rmse_old, rel=1e-9)
    assert decision.numbers["challenger_metric"] == pytest.approx(rmse_new, rel=1e-9)
    assert decision.numbers["delta"] == pytest.approx(rmse_old - rmse_new, rel=1e-9)
    assert renv.store.get_alias(model, "champion") == better


def test_shadow_scores_probability_metrics_on_the_logged_probabilities(renv: REnv) -> None:
    champion, better = renv.worse, renv.champion  # the majority-class model against a real one
    renv.store.set_alias(MODEL, "champion", champion)
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": 150}},
                   evaluation={"metric": "log_loss"}, gates={"n_bootstrap": 200})
    renv.champion = champion
    renv.start("shadow", better)
    rows = traffic(200, seed=42)
    with prediction_log(renv) as writer:
        old = log_answers(writer, renv, MODEL, champion, rows).probabilities
        new = log_answers(writer, renv, MODEL, better, rows, role="shadow").probabilities
        log_feedback(writer, MODEL, rows, rows["churned"])
    decision = renv.advance()
    assert decision.status == "promoted", decision.reason
    y = rows["churned"].to_numpy()  # classes [0, 1]: the label is the probability column
    loss_old = float(-np.mean(np.log(np.clip(old[np.arange(len(y)), y], 1e-15, 1.0))))
    loss_new = float(-np.mean(np.log(np.clip(new[np.arange(len(y)), y], 1e-15, 1.0))))
    assert decision.numbers["metric"] == "log_loss" and decision.numbers["pairs"] == 200
    assert decision.numbers["champion_metric"] == pytest.approx(loss_old, rel=1e-9)
    assert decision.numbers["challenger_metric"] == pytest.approx(loss_new, rel=1e-9)
    assert decision.status == "promoted", decision.reason


def test_shadow_min_labelled_below_what_a_comparison_needs_is_a_config_error() -> None:
    assert ShadowConfig(min_labelled=MIN_HOLDOUT_ROWS).min_labelled == MIN_HOLDOUT_ROWS
    raw = {"model": {"name": MODEL, "target": "y"}, "rollout": {"shadow": {"min_labelled": MIN_HOLDOUT_ROWS - 1}}}
    with pytest.raises(ConfigError, match=r"rollout\.shadow\.min_labelled.*greater than or equal to 30"):
        PilotConfig.from_dict(raw)


def test_shadow_waits_while_the_labels_cannot_be_compared(renv: REnv) -> None:
    renv.configure({"strategy": "shadow", "shadow": {"min_labelled": 40}},
                   evaluation={"metric": "roc_auc"}, gates={"n_bootstrap": 100})
    renv.start("shadow", renv.healthy)
    rows = traffic(50, seed=43)
    with prediction_log(renv) as writer:
        log_answers(writer, renv, MODEL, renv.champion, rows)
        log_answers(writer, renv, MODEL, renv.healthy, rows, role="shadow")
        log_feedback(writer, MODEL, rows, [1] * len(rows))  # one class: no roc_auc exists
    waiting = renv.advance()
    assert waiting.status == "in_progress"
    assert waiting.reason == ("shadow: cannot compare yet (no bootstrap resample of the holdout could be scored: "
                              "the holdout needs both classes)")
    state, _ = st.load(renv.store, MODEL)
    assert state is not None and state.active and state.arms["shadow"]["paired"] == 50
    assert renv.store.get_version(MODEL, renv.healthy).status == "registered"
    with prediction_log(renv) as writer:  # the true labels arrive (the latest label per request counts)
        log_feedback(writer, MODEL, rows, rows["churned"])
    decided = renv.advance()
    assert decided.status in ("promoted", "rejected") and decided.numbers["pairs"] == 50
    assert decided.numbers["metric"] == "roc_auc"


def test_an_unhealthy_ab_challenger_is_rolled_back_with_every_breach_named(renv: REnv) -> None:
    renv.configure({"strategy": "ab", "ab": {"share": 0.5}, "canary": {"min_latency_samples": 20, "max_error_rate": 0.1}})
    strategy = get_strategy("ab", cfg=renv.cfg, artifacts=renv.artifacts)
    strategy.start(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="t", numbers={}, now=T0)
    rows = traffic(70, seed=51)
    with prediction_log(renv) as writer:
        log_answers(writer, renv, MODEL, renv.champion, rows.iloc[:40], latency_ms=1.0)
        log_answers(writer, renv, MODEL, renv.healthy, rows.iloc[40:60], latency_ms=500.0)
        log_answers(writer, renv, MODEL, renv.healthy, rows.iloc[60:], role="error")
    decision = strategy.advance(renv.store, MODEL, now=T0 + timedelta(minutes=1))
    assert decision is not None and decision.status == "rolled_back"
    slow, _ = latency_check(renv.cfg.rollout.canary, pd.DataFrame({"latency_ms": [1.0] * 40}),
                            pd.DataFrame({"latency_ms": [500.0] * 20}))
    assert slow is not None
    assert decision.reason == f"A/B challenger unhealthy: error rate 33.3% > 10.0% (10 of 30 calls failed); {slow}"
    assert decision.numbers["error_rate"] == pytest.approx(10 / 30)
    assert renv.store.get_version(MODEL, renv.healthy).status == "rejected"
    assert renv.store.get_alias(MODEL, "champion") == renv.champion
