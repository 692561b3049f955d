"""The ``coverage_drop`` trigger: conformal intervals / prediction sets that hold the label
less often than promised, by ``threshold`` points and beyond chance, call for a retrain.

Unit readings on both sides of each boundary, the summary as the monitoring pass writes it,
and a replay where coverage alone (every other trigger off) catches a concept drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from scipy import stats

from modelpilot.backtest import parse_policies, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario
from modelpilot.policy.triggers import (
    COVERAGE_ALPHA,
    DYNAMIC_RULES,
    MonitoringSummary,
    TriggerState,
    evaluate,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ON = {"coverage_drop": {"enabled": True}}


def cfg(triggers: dict[str, Any] | None = None) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, "triggers": triggers or {}})


def reading(covered: int, n: int, target: float = 0.9) -> dict[str, float]:
    """What the monitoring pass stores: coverage, target, the one-sided binomial p and n."""
    return {"coverage": covered / n, "target": target, "p_value": float(stats.binom.cdf(covered, n, target)), "n": n}


def decide(config: PilotConfig, coverage: dict[str, float] | None) -> Any:
    raw = {"n_predictions": 1000, "n_labelled": 1000, "metric": "accuracy", "window_end": T0.isoformat(),
           "performance": 0.8, "coverage": coverage}
    out = evaluate(config, MonitoringSummary.from_dict(raw), TriggerState(), T0)
    return out, next(d for d in out.decisions if d.name == "coverage_drop")


def test_a_coverage_shortfall_beyond_chance_fires_with_its_figures() -> None:
    c = reading(800, 1000)  # 0.80 against 0.90: 10 points short, p far below 0.01
    out, d = decide(cfg(ON), c)
    assert d.status == "fired" and out.retrain
    assert d.reason == (f"conformal coverage 0.8000 on 1000 labelled predictions against the promised 0.9000 "
                        f"(shortfall +0.1000, threshold 0.05; binomial p={c['p_value']:.2g})")
    assert d.numbers["coverage"] == 0.8 and d.numbers["target"] == 0.9 and d.numbers["alpha"] == COVERAGE_ALPHA
    assert d.numbers["shortfall"] == pytest.approx(0.1) and d.numbers["n"] == 1000


def test_coverage_drop_is_off_by_default_and_reported_as_disabled() -> None:
    out, d = decide(cfg(), reading(800, 1000))
    assert d.status == "quiet" and d.reason.startswith("disabled (triggers.coverage_drop.enabled)")
    assert not out.retrain


@pytest.mark.parametrize(("covered", "status"), [(850, "fired"), (851, "quiet")])
def test_the_threshold_is_inclusive(covered: int, status: str) -> None:
    # 0.90 - 0.85 is exactly the 0.05 threshold (as a float, a hair above or below): judge by the rule
    c = reading(covered, 1000)
    _, d = decide(cfg({"coverage_drop": {"enabled": True, "threshold": c["target"] - 0.85}}), c)
    assert d.status == status


def test_a_shortfall_within_chance_does_not_fire() -> None:
    # 54 of 60: 0.90 is the promise, 0.85 would be 5 points short; on 60 rows that is chance
    c = reading(51, 60)
    assert c["target"] - c["coverage"] >= 0.05 and c["p_value"] >= COVERAGE_ALPHA
    _, d = decide(cfg({"coverage_drop": {"enabled": True, "min_samples": 50}}), c)
    assert d.status == "quiet" and d.reason.endswith(f"; within chance (p >= {COVERAGE_ALPHA})")


def test_too_few_labelled_rows_is_insufficient() -> None:
    c = reading(150, 199)
    _, d = decide(cfg(ON), c)  # min_samples 200
    assert d.status == "insufficient_samples" and "only 199 samples" in d.reason


def test_no_calibration_or_an_older_report_reads_as_no_coverage() -> None:
    for raw in (None, 0.83):  # absent, or a bare number as older reports stored it
        _, d = decide(cfg(ON), raw)  # type: ignore[arg-type]
        assert d.status == "quiet" and d.reason.startswith("no conformal coverage in the window")


def test_every_dynamic_rule_is_switched_off_in_a_non_dynamic_backtest_policy() -> None:
    from modelpilot.backtest.policies import policy_config

    base = cfg({name: {"enabled": True} for name in DYNAMIC_RULES})
    [fixed] = [s for s in parse_policies(["fixed:every=3"], base) if s.kind == "fixed"]
    off = policy_config(base, fixed).triggers
    assert "coverage_drop" in DYNAMIC_RULES
    assert not any(getattr(off, name).enabled for name in DYNAMIC_RULES)


def test_coverage_alone_catches_a_concept_drift_in_a_replay() -> None:
    """Every other trigger and the change detector off: the sudden scenario's drift breaks the
    promise of the conformal sets, and coverage_drop retrains after it, not before."""
    frame, info = scenario("sudden", 8000, seed=0)
    off = {name: {"enabled": False} for name in DYNAMIC_RULES}
    raw = {"model": {"name": "cov", "target": "y", "time_column": "ts", "seed": 0},
           "triggers": {**off, "coverage_drop": {"enabled": True}, "change": {"enabled": False}}}
    config = PilotConfig.from_dict(raw)
    result = run_backtest(frame, config, parse_policies(["dynamic"], config), batch=500, label_delay=1, scenario=info)
    dynamic = result.policy("dynamic")
    first_drift = result.scenario["drift_batches"][0] if result.scenario else 0
    assert dynamic["retrains"] >= 1, dynamic["retrain_reasons"]
    assert min(dynamic["retrain_batches"]) >= first_drift
    assert all(r.startswith("conformal coverage") for r in dynamic["retrain_reasons"]), dynamic["retrain_reasons"]
