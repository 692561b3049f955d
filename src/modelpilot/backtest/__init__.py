"""Replay a labelled history through the real loop under several retraining policies.

Example::

    from modelpilot.backtest import parse_policies, run_backtest
    from modelpilot.config import PilotConfig
    from modelpilot.data.synth import scenario

    frame, info = scenario("sudden", 12_000, seed=0)
    cfg = PilotConfig.from_dict({"model": {"name": "bt", "target": "y", "time_column": "ts"}})
    result = run_backtest(frame, cfg, parse_policies(["never", "dynamic"]), batch=500, scenario=info)
    print(result.policy("dynamic")["retrain_batches"])

docs/backtest.md tells the whole story.
"""

from __future__ import annotations

from modelpilot.backtest.engine import BacktestResult, prepare_history, run_backtest
from modelpilot.backtest.policies import (
    FORMS,
    PolicySpec,
    parse_policies,
    parse_policy,
    policy_config,
)
from modelpilot.backtest.replay import backtest_profile, replay_policy
from modelpilot.backtest.report import write_report

__all__ = [
    "FORMS",
    "BacktestResult",
    "PolicySpec",
    "backtest_profile",
    "parse_policies",
    "parse_policy",
    "policy_config",
    "prepare_history",
    "replay_policy",
    "run_backtest",
    "write_report",
]
