from __future__ import annotations

import pytest

from modelpilot.backtest import parse_policies, parse_policy, policy_config
from modelpilot.config import PilotConfig
from modelpilot.errors import ConfigError


def _cfg(**extra: object) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, **extra})


def test_the_written_forms() -> None:
    assert parse_policy("never").kind == "never"
    assert parse_policy("dynamic").kind == "dynamic"
    fixed = parse_policy("fixed:every=3")
    assert (fixed.kind, fixed.every) == ("fixed", 3)
    assert [b for b in range(9) if fixed.forced(b)] == [2, 5, 8]
    oracle = parse_policy("at:batches=7,2")
    assert oracle.batches == (2, 7) and oracle.forced(7) and not oracle.forced(3)


def test_unknown_policy_lists_the_valid_forms() -> None:
    with pytest.raises(ConfigError, match=r"unknown policy 'sometimes': use one of never, fixed:every=N, dynamic"):
        parse_policy("sometimes", _cfg())
    with pytest.raises(ConfigError, match="every must be at least 1 batch"):
        parse_policy("fixed:every=0")
    with pytest.raises(ConfigError, match="given twice"):
        parse_policies(["dynamic", "dynamic"])


def test_named_policy_from_the_config_and_never_added_as_baseline() -> None:
    cfg = _cfg(policies={"eager": {"kind": "dynamic", "triggers": {"performance_drop": {"threshold": 0.02}}},
                         "weekly": {"kind": "fixed", "every": 7}})
    specs = parse_policies(["eager", "weekly"], cfg)
    assert [s.name for s in specs] == ["never", "eager", "weekly"]
    assert policy_config(cfg, specs[1]).triggers.performance_drop.threshold == 0.02
    assert specs[2].every == 7
    with pytest.raises(ConfigError, match=r"defined: eager, weekly"):
        parse_policy("monthly", cfg)


def test_only_dynamic_policies_keep_their_triggers() -> None:
    cfg = _cfg(triggers={"feature_drift": {"enabled": True}, "schedule": "0 3 * * 0"})
    fixed = policy_config(cfg, parse_policy("fixed:every=2")).triggers
    assert not fixed.performance_drop.enabled and not fixed.feature_drift.enabled and fixed.schedule is None
    dynamic = policy_config(cfg, parse_policy("dynamic")).triggers
    assert dynamic.performance_drop.enabled and dynamic.feature_drift.enabled and dynamic.schedule == "0 3 * * 0"
