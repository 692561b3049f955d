"""The backtest's page and summary show what each policy decided: which retrains were
promoted or rejected, where the true drifts were, the figures per policy and the notes.

Built from a hand-written result (the shape of ``BacktestResult.to_dict()``), so no
history is replayed.
"""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from modelpilot.backtest.policies import parse_policies, parse_policy, policy_config
from modelpilot.backtest.report import (
    cost_chart,
    metric_chart,
    print_summary,
    render_report,
    write_report,
)
from modelpilot.config import PilotConfig
from modelpilot.errors import ConfigError


def _result(**extra: Any) -> dict[str, Any]:
    never = {"name": "never", "mean_metric": 0.7, "vs_never": None, "retrains": 0, "retrain_batches": [],
             "retrain_reasons": [], "train_cpu_seconds": 0.0, "cost": 0.0, "metric_by_batch": [0.8, 0.7, 0.6],
             "served": 300, "paired": 0}
    dynamic = {"name": "<dyn>", "mean_metric": 0.8, "vs_never": 0.1, "retrains": 2, "retrain_batches": [0, 2],
               "retrain_promoted": [True, False], "retrain_reasons": ["drift <x>", "performance drop"],
               "train_cpu_seconds": 1.5, "cost": 0.000123, "value": 12.5, "net_value": 12.25, "roi": 3.0,
               "roi_note": "below costs.roi_min_cost", "metric_by_batch": [0.8, 0.85, 0.75],
               "served": 300, "paired": 200}
    return {"metric": "accuracy", "batches": 3, "batch_size": 100, "initial_rows": 500, "label_delay": 1,
            "policies": [never, dynamic], **extra}


def test_retrain_markers_tell_promoted_from_rejected_and_carry_the_reason() -> None:
    fig = metric_chart(_result())
    lines = [t for t in fig.data if t.mode == "lines"]
    markers = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in lines] == ["never", "<dyn>"]
    [dyn] = markers  # the policy that never retrained has no markers
    assert list(dyn.x) == [0, 2] and list(dyn.y) == [0.8, 0.75]
    assert list(dyn.marker.symbol) == ["triangle-up", "x"]
    assert list(dyn.text) == ["retrain at batch 0 (promoted): drift &lt;x&gt;",
                              "retrain at batch 2 (rejected by the gate): performance drop"]


def test_retrains_without_a_gate_record_are_shown_as_promoted() -> None:
    result = _result()
    del result["policies"][1]["retrain_promoted"]
    [dyn] = [t for t in metric_chart(result).data if t.mode == "markers"]
    assert list(dyn.marker.symbol) == ["triangle-up", "triangle-up"]


def test_true_drifts_are_drawn_where_the_scenario_put_them() -> None:
    fig = metric_chart(_result(scenario={"name": "s", "drift_batches": [1, 2]}))
    assert [s.x0 for s in fig.layout.shapes] == [1, 2]
    assert metric_chart(_result()).layout.shapes == ()


def test_cost_chart_places_each_policy_at_its_cost_and_mean() -> None:
    [trace] = cost_chart(_result()).data
    assert list(trace.x) == [0.0, 0.000123] and list(trace.y) == [0.7, 0.8]
    assert list(trace.text) == ["never", "<dyn>"]
    assert [list(c) for c in trace.customdata] == [[0, 0.0, "–", "–"], [2, 1.5, "12.50", "3.00"]]


def test_the_page_has_one_row_per_policy_with_its_figures_escaped(tmp_path: Any) -> None:
    result = _result(warnings=["few <labels>"], scenario={"name": "gradual", "description": "a & b"},
                     clock={"description": "simulated clock"})
    page = render_report(result)
    assert "<tr><td>never</td><td>0.7000</td><td>–</td><td>0</td><td>–</td><td>0.00</td><td>0.000000</td>" in page
    assert ("<tr><td>&lt;dyn&gt;</td><td>0.8000</td><td>0.1000</td><td>2</td><td>0, 2</td><td>1.50</td>"
            "<td>0.000123</td><td>12.50</td><td>12.25</td><td title='below costs.roi_min_cost'>3.00</td>"
            "<td>300 / 200</td></tr>") in page
    assert "<p class='warn'>few &lt;labels&gt;</p>" in page
    assert "labels arrive 1 batch(es) late — scenario gradual: a &amp; b<br>simulated clock" in page
    assert "<script src=" not in page and page.count("<script") >= 2  # Plotly embedded, works offline
    out = write_report(result, tmp_path / "deep" / "report.html")
    assert out.read_text(encoding="utf-8") == page


def test_the_summary_prints_each_policy_and_roi_notes_only_for_policies_that_retrained() -> None:
    result = _result(scenario={"name": "gradual", "drift_batches": [1]})
    result["policies"][0]["roi_note"] = "never retrained: no note expected"
    console = Console(record=True, width=250)
    print_summary(console, result)
    text = console.export_text()
    assert "scenario gradual (drifts at batches [1])" in text
    assert "<dyn>" in text and "0, 2" in text and "300 / 200" in text
    assert "ROI —: below costs.roi_min_cost" in text and "no note expected" not in text


# --------------------------------------------------------------------------- policies


def _cfg(**extra: object) -> PilotConfig:
    return PilotConfig.from_dict({"model": {"name": "m", "target": "y"}, **extra})


def test_a_fixed_cadence_forces_a_retrain_after_every_nth_batch_only() -> None:
    spec = parse_policy("fixed:every=1")
    assert all(spec.forced(b) for b in range(4))
    assert spec.forced(3) == "fixed cadence: every 1 batches (batch 3)"
    assert parse_policy("never").forced(0) is None and parse_policy("dynamic").forced(0) is None
    assert parse_policy("at:batches=3").forced(3) == "scheduled by the policy 'at:batches=3' at batch 3"


def test_a_named_fixed_policy_needs_every_and_keeps_only_the_sections_it_overrides() -> None:
    cfg = _cfg(policies={"lazy": {"kind": "fixed"}, "weekly": {"kind": "fixed", "every": 7},
                         "tuned": {"retraining": {"recent_rows": 500}}})
    with pytest.raises(ConfigError, match="policies.lazy: a fixed policy needs 'every: N'"):
        parse_policy("lazy", cfg)
    weekly = parse_policy("weekly", cfg)
    assert (weekly.kind, weekly.every, weekly.overrides) == ("fixed", 7, {})
    tuned = parse_policy("tuned", cfg)
    assert tuned.kind == "dynamic" and list(tuned.overrides) == ["retraining"]
    with pytest.raises(ConfigError, match=r"defined: none\)"):
        parse_policy("monthly", _cfg())


def test_never_is_added_as_the_baseline_unless_an_unmodified_never_is_given() -> None:
    assert [s.name for s in parse_policies([])] == ["never", "dynamic"]
    assert [s.name for s in parse_policies(["dynamic"])] == ["never", "dynamic"]
    assert [s.name for s in parse_policies(["dynamic", "never"])] == ["dynamic", "never"]
    # a named never-policy with its own retraining section is not the baseline
    cfg = _cfg(policies={"frozen": {"kind": "never", "retraining": {"recent_rows": 500}}})
    assert [s.name for s in parse_policies(["frozen"], cfg)] == ["never", "frozen"]


def test_non_dynamic_policies_replay_with_no_trigger_that_can_fire() -> None:
    cfg = _cfg(triggers={"schedule": "0 3 * * 0", "performance_drop": {"threshold": 0.05}})
    for text in ("never", "fixed:every=2", "at:batches=1"):
        triggers = policy_config(cfg, parse_policy(text)).triggers
        assert triggers.schedule is None and triggers.change.enabled is False
        assert not any(getattr(triggers, name).enabled for name in (
            "performance_drop", "segment_performance_drop", "estimated_performance_drop",
            "feature_drift", "prediction_drift"))
        assert triggers.performance_drop.threshold == 0.05  # switched off, not reset
    dynamic = policy_config(cfg, parse_policy("dynamic")).triggers
    assert dynamic.schedule is not None and dynamic.performance_drop.enabled is True
