"""The shipped Prometheus rules and Grafana dashboard against the real ``/metrics`` output.

Every metric an alert or a panel queries must be one the server exposes; promtool (when
installed: ``apt-get install prometheus``) checks the rules' syntax, the dashboard's
queries, and that two alerts fire on the series they are meant for.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from modelpilot.artifacts import open_artifacts
from modelpilot.config import PilotConfig
from modelpilot.serving import create_app
from modelpilot.store import Store
from modelpilot.testing.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "modelpilot-dashboard.json"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created")}


def metrics_text(tmp_path: Path) -> str:
    """``/metrics`` of a real app over a store with a champion and a monitoring report."""
    cfg = PilotConfig.model_validate({"model": {"name": "churn", "target": "y", "segments": ["region"]}})
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    store.register_version("churn", run_id=None, artifact_key="k", reference_key=None, signature=[],
                           task="classification", classes=["0", "1"], metrics={}, lineage={})
    store.set_alias("churn", "champion", 1)
    store.add_monitoring_report(
        "churn", 1, window_start=None, window_end=None, n_predictions=900, n_labelled=400, details_key=None,
        summary={"metric": "accuracy", "performance": 0.81, "n_labelled": 400, "estimated_performance": 0.88,
                 "segment_performance": {"region=north": {"value": 0.64, "n": 150}},
                 "segment_estimated_performance": {"region=north": 0.86}})
    event = store.add_event("promoted", model="churn")
    store.queue_deliveries("ops", "http://127.0.0.1:9/hook", [event])
    app = create_app(cfg, store, open_artifacts(str(tmp_path / "artifacts")))
    try:
        return app.state.metrics.render().decode()  # the body of GET /metrics
    finally:
        store.close()


def exposed_names(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def queried_names(expr: str) -> set[str]:
    return set(re.findall(r"\bmodelpilot_[a-zA-Z0-9_]+", expr))


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


def test_the_champion_series_carry_the_stored_report(tmp_path: Path) -> None:
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(metrics_text(tmp_path)) for s in f.samples}

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    base = {"model": "churn", "version": "1", "metric": "accuracy"}
    assert value("modelpilot_champion_performance", **base, segment="all") == 0.81
    assert value("modelpilot_champion_performance", **base, segment="region=north") == 0.64
    assert value("modelpilot_champion_estimated_performance", **base, segment="region=north") == 0.86
    assert value("modelpilot_champion_labelled_rows", model="churn", version="1", segment="region=north") == 150
    assert value("modelpilot_webhook_deliveries", webhook="ops", status="pending") == 1
    since = value("modelpilot_seconds_since_last_retrain", model="churn")
    assert 0 <= since < 600
    registered = value("modelpilot_last_retrain_timestamp_seconds", model="churn")
    assert abs(registered - (datetime.now(UTC) - timedelta(seconds=since)).timestamp()) < 60


def test_every_queried_metric_is_exposed(tmp_path: Path) -> None:
    exposed = exposed_names(metrics_text(tmp_path))
    exprs = [r["expr"] for r in rules()] + dashboard_exprs()
    queried = set().union(*(queried_names(e) for e in exprs))
    assert queried and queried <= exposed, sorted(queried - exposed)


def test_rules_and_dashboard_are_well_formed() -> None:
    for rule in rules():
        assert rule["alert"].startswith("Modelpilot") and rule["expr"].strip()
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and isinstance(doc["schemaVersion"], int)
    assert {v["name"] for v in doc["templating"]["list"]} == {"datasource", "model"}
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["type"] in {"stat", "timeseries"} and set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["targets"] and all(t["refId"] and t["expr"] for t in panel["targets"])


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool not installed (apt-get install prometheus); it checks the shipped alert rules")
    return found


def test_promtool_accepts_the_rules_and_the_dashboard_queries(promtool: str, tmp_path: Path) -> None:
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    # the panels' queries, with Grafana's variable filled in, as recording rules
    recorded = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e.replace("$model", ".+")} for i, e in enumerate(dashboard_exprs())]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(recorded))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alerts_fire_on_the_series_they_watch(promtool: str, tmp_path: Path) -> None:
    notes = {r["alert"]: r["annotations"] for r in rules()}
    labels = 'model="churn",version="3",metric="accuracy"'
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": f'modelpilot_champion_estimated_performance{{{labels},segment="all"}}', "values": "0.9x90"},
            {"series": f'modelpilot_champion_performance{{{labels},segment="all"}}', "values": "0.8x90"},
            {"series": f'modelpilot_champion_performance{{{labels},segment="region=north"}}', "values": "0.62x90"},
            {"series": 'modelpilot_champion_labelled_rows{model="churn",version="3",segment="all"}', "values": "500x90"},
            {"series": 'modelpilot_champion_labelled_rows{model="churn",version="3",segment="region=north"}',
             "values": "150x90"},
            {"series": 'modelpilot_seconds_since_last_retrain{model="churn"}', "values": "86400x90"},
        ],
        "alert_rule_test": [
            {"eval_time": "40m", "alertname": "ModelpilotMeasuredBelowEstimated", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "model": "churn", "version": "3", "metric": "accuracy",
                                "segment": "all"},
                 "exp_annotations": {"summary": "churn v3 (all): measured accuracy is 0.100 below the estimate",
                                     "description": notes["ModelpilotMeasuredBelowEstimated"]["description"]}}]},
            {"eval_time": "80m", "alertname": "ModelpilotSegmentBehind", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "model": "churn", "version": "3", "metric": "accuracy",
                                "segment": "region=north"},
                 "exp_annotations": {"summary": "churn: segment region=north is 0.180 behind the whole traffic on accuracy",
                                     "description": notes["ModelpilotSegmentBehind"]["description"]}}]},
            {"eval_time": "80m", "alertname": "ModelpilotNoRetrainFor30Days", "exp_alerts": []},
        ],
    }]}
    path = tmp_path / "alerts-test.yml"
    path.write_text(yaml.safe_dump(tests))
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
