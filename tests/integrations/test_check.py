"""``modelpilot check config|data|model``: exit codes, the JUnit report, and that each check bites.

The commands run for real in subprocesses over a project on disk (SQLite store, local
artifacts); the model checks use two trained versions: v1 (a one-tree model, champion) and
v2 (the default model), scored on a fresh labelled holdout from the same generator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpilot.data.synth import customers
from modelpilot.integrations.checks import check_data, check_model
from modelpilot.pilot import Pilot

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELPILOT, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300,
                          check=False)


def config(**extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "model": {"name": "churn", "target": "churned", "task": "classification", "time_column": "ts",
                  "segments": ["region"]},
        "data": {"source": "data/customers.parquet", "schema": {"tenure_months": "float"},
                 "validation": {"missing": {"max_fraction": 0.2, "action": "fail"}}},
        "tuning": {"enabled": False},
        "evaluation": {"permutation_repeats": 1, "importance_max_rows": 200, "learning_curve": False},
        "gates": {"test": "bootstrap", "n_bootstrap": 300, "min_metrics": {"accuracy": 0.5}},
        "executor": {"workers": 1},
    }
    raw.update(extra)
    return raw


def project(folder: Path, rows: int = 2000) -> Path:
    (folder / "data").mkdir(parents=True)
    customers(rows, seed=0).to_parquet(folder / "data" / "customers.parquet", index=False)
    (folder / "pilot.yaml").write_text(yaml.safe_dump(config()))
    return folder


def junit(path: Path) -> dict[str, str]:
    """{testcase name: "passed" | "failure" | "skipped"} of a JUnit file (parsed, so it is valid XML)."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = {c.get("name", ""): next((child.tag for child in c if child.tag in ("failure", "skipped")), "passed")
             for c in suite.iter("testcase")}
    assert int(suite.get("tests", "-1")) == len(cases)
    assert int(suite.get("failures", "-1")) == sum(v == "failure" for v in cases.values())
    assert int(suite.get("skipped", "-1")) == sum(v == "skipped" for v in cases.values())
    return cases


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1: a one-split model (champion); v2: the default model; a fresh holdout."""
    folder = project(tmp_path_factory.mktemp("checked"))
    with Pilot.from_config(folder / "pilot.yaml") as pilot:
        weak = pilot.train(params_override={"max_iter": 1, "max_depth": 1})
        strong = pilot.train()
        assert (weak.version, weak.aliases, strong.version, strong.aliases) == (1, ["champion"], 2, [])
    customers(1500, seed=7).to_parquet(folder / "holdout.parquet", index=False)
    return folder


# --------------------------------------------------------------------------- config


def test_check_config_passes_a_good_config_and_fails_a_typo_with_a_report(tmp_path: Path) -> None:
    folder = project(tmp_path / "p", rows=300)
    done = run(folder, "check", "config", "--junit", "reports/config.xml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert junit(folder / "reports" / "config.xml") == dict.fromkeys(("config", "data", "metrics", "estimator"),
                                                                     "passed")

    raw = config()
    raw["model"]["targte"] = raw["model"].pop("target")  # a typo: the config no longer loads
    (folder / "pilot.yaml").write_text(yaml.safe_dump(raw))
    done = run(folder, "check", "config", "--junit", "reports/config.xml", "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert not result["ok"] and result["checks"][0]["status"] == "fail"
    assert "model.target: required but missing" in result["checks"][0]["message"]
    assert junit(folder / "reports" / "config.xml") == {"config": "failure", "data": "skipped",
                                                        "metrics": "skipped", "estimator": "skipped"}
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    folder = project(tmp_path / "p", rows=300)
    assert run(folder, "check", "data").returncode == 2  # FILE is missing
    done = run(folder, "check", "model", "--version", "two")
    assert done.returncode == 2 and "--version" in done.stderr


# --------------------------------------------------------------------------- data


def test_check_data_runs_every_validation_check_and_fails_a_bad_file(tmp_path: Path) -> None:
    folder = project(tmp_path / "p", rows=500)
    good = customers(400, seed=3)
    good.to_parquet(folder / "new.parquet", index=False)
    done = run(folder, "check", "data", "new.parquet", "--junit", "r.xml")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = junit(folder / "r.xml")
    from modelpilot.data.validation import CHECKS

    assert set(CHECKS) <= set(cases) and cases["read"] == cases["columns"] == "passed"
    assert cases["champion_columns"] == cases["scale"] == "skipped"  # nothing trained yet

    bad = good.copy()
    bad.loc[: len(bad) // 2, "age"] = None  # half missing: above the 20% the config allows
    bad.to_csv(folder / "bad.csv", index=False)
    done = run(folder, "check", "data", "bad.csv", "--junit", "r.xml")
    assert done.returncode == 1
    cases = junit(folder / "r.xml")
    assert cases["missing"] == "failure" and cases["types"] == "passed"
    failure = ET.parse(folder / "r.xml").getroot().find(".//testcase[@name='missing']/failure")
    assert failure is not None and "age" in failure.get("message", "") and "max_fraction" in (failure.text or "")

    bad.drop(columns=["churned"]).to_parquet(folder / "unlabelled.parquet", index=False)
    done = run(folder, "check", "data", "unlabelled.parquet", "--json")
    assert done.returncode == 1
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["columns"]["status"] == "fail" and "churned" in checks["columns"]["message"]
    assert checks["missing"]["status"] == "off"  # not run on a file whose columns do not match

    done = run(folder, "check", "data", "nowhere.parquet", "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["checks"][0]["status"] == "fail"


@pytest.mark.slow
def test_check_data_compares_the_file_with_the_champion(trained: Path) -> None:
    from modelpilot.config import PilotConfig

    cfg = PilotConfig.load(trained / "pilot.yaml")
    fresh = customers(600, seed=11)
    with Pilot(cfg) as pilot:
        report = check_data(cfg, trained / "holdout.parquet", pilot.store, pilot.artifacts)
        assert report.ok and {c.name: c.status for c in report.checks}["scale"] == "pass"
        fresh["monthly_spend"] *= 100  # cents instead of euros: same columns, wrong scale
        fresh.drop(columns=["plan"]).to_parquet(trained / "cents.parquet", index=False)
        report = check_data(cfg, trained / "cents.parquet", pilot.store, pilot.artifacts)
    statuses = {c.name: c for c in report.checks}
    assert not report.ok
    assert statuses["champion_columns"].status == "fail" and "plan" in statuses["champion_columns"].message
    assert statuses["scale"].status == "fail" and "monthly_spend" in statuses["scale"].message


# --------------------------------------------------------------------------- model


@pytest.mark.slow
def test_check_model_passes_a_better_version_and_fails_a_worse_one(trained: Path) -> None:
    done = run(trained, "check", "model", "--version", "2", "--holdout", "holdout.parquet", "--junit", "m.xml")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = junit(trained / "m.xml")
    assert {"exists", "loads", "probe", "threshold:accuracy", "holdout", "gate:beats_champion",
            "gate:significance"} <= set(cases)
    assert set(cases.values()) == {"passed"}
    assert any(name.startswith("gate:segment:region=") for name in cases)

    from modelpilot.config import PilotConfig

    cfg = PilotConfig.load(trained / "pilot.yaml")
    with Pilot(cfg) as pilot:
        # the champion itself: nothing to compare with, the rest still checked
        report = check_model(cfg, pilot.store, pilot.artifacts, 1, trained / "holdout.parquet")
        assert report.ok and [c.status for c in report.checks if c.name == "gate"] == ["off"]
        pilot.store.set_alias("churn", "champion", 2)
        try:
            report = check_model(cfg, pilot.store, pilot.artifacts, 1, trained / "holdout.parquet")
        finally:
            pilot.store.set_alias("churn", "champion", 1)
    by_name = {c.name: c for c in report.checks}
    assert not report.ok and by_name["gate:beats_champion"].status == "fail"
    assert "v1 against the champion v2" in by_name["gate:beats_champion"].message


@pytest.mark.slow
def test_check_model_fails_thresholds_an_unknown_version_and_a_refused_file(trained: Path) -> None:
    raw = config(gates={"min_metrics": {"accuracy": 0.99}})
    (trained / "strict.yaml").write_text(yaml.safe_dump(raw))
    done = run(trained, "check", "model", "-c", "strict.yaml", "--version", "2", "--json")
    assert done.returncode == 1
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["threshold:accuracy"]["status"] == "fail" and checks["probe"]["status"] == "pass"
    assert checks["gate"]["status"] == "off" and "--holdout" in checks["gate"]["message"]

    done = run(trained, "check", "model", "--version", "9", "--json")
    assert done.returncode == 1
    first = json.loads(done.stdout)["checks"][0]
    assert first["name"] == "exists" and first["status"] == "fail" and "no version 9" in first["message"]

    from modelpilot.config import PilotConfig

    cfg = PilotConfig.load(trained / "pilot.yaml")
    with Pilot(cfg) as pilot:  # a version whose file is not a model: refused before anything loads
        record = pilot.store.get_version("churn", 2)
        key = pilot.artifacts.put_bytes(b"PK\x03\x04 not a skops file", suffix=".skops")
        bogus = pilot.store.register_version(
            "churn", run_id=None, artifact_key=key, reference_key=None, signature=record.signature,
            task=record.task, classes=record.classes, metrics=record.metrics, lineage={})
        report = check_model(cfg, pilot.store, pilot.artifacts, bogus.version)
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["loads"] == "fail" and statuses["probe"] == statuses["gate"] == "off"
