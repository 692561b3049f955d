"""docs/ci.md: the GitHub Actions and GitLab CI examples run as a CI job would run them.

Each example's commands (the ``run:`` steps of the workflow, the ``script:`` of the GitLab
job) run in order, each as its own shell step, in a folder ``modelpilot init`` prepared; the
only lines not run are the ``pip install`` of the package, which this environment has. The
JUnit files the report steps publish must exist and parse.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "ci.md"
YAML_BLOCK = re.compile(r"^```yaml\n(?P<body>.*?)^```", re.M | re.S)
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb",
       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def examples() -> dict[str, tuple[list[str], list[str]]]:
    """{file the block says it is: (commands, JUnit report globs)}."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for m in YAML_BLOCK.finditer(PAGE.read_text()):
        body = m.group("body")
        name = body.splitlines()[0].removeprefix("#").strip()
        doc = yaml.safe_load(body)
        if name.startswith(".github/workflows/"):
            steps = [s for job in doc["jobs"].values() for s in job["steps"]]
            commands = [s["run"] for s in steps if "run" in s]
            reports = [s["with"]["report_paths"] for s in steps if "junit-report" in s.get("uses", "")]
        else:
            job = next(v for v in doc.values() if isinstance(v, dict) and "script" in v)
            commands = list(job["script"])
            reports = [job["artifacts"]["reports"]["junit"]]
        found[name] = (commands, reports)
    return found


def test_the_page_has_both_examples_with_the_three_checks() -> None:
    found = examples()
    assert set(found) == {".github/workflows/model-checks.yml", ".gitlab-ci.yml"}
    for commands, reports in found.values():
        assert reports == ["reports/*.xml"]
        for sub in ("config", "data", "model"):
            assert any(c.startswith(f"modelpilot check {sub}") and "--junit reports/" in c for c in commands)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("repo")
    done = subprocess.run(["modelpilot", "init"], cwd=folder, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # the example's evaluation, lighter: the learning curve and importance repeats cost minutes on a busy CI box
    config = yaml.safe_load((folder / "pilot.yaml").read_text())
    config["evaluation"].update(learning_curve=False, permutation_repeats=1)
    (folder / "pilot.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.mark.slow
def test_the_example_jobs_run_green_and_publish_reports(initialised: Path, tmp_path: Path) -> None:
    found = examples()
    commands, reports = found[".github/workflows/model-checks.yml"]
    assert found[".gitlab-ci.yml"] == (commands, reports)  # one run covers both: the same steps
    work = tmp_path / "repo"
    shutil.copytree(initialised, work)
    ran = 0
    for command in commands:
        if command.startswith("pip install"):
            continue  # the package under test is installed already
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=work, env=ENV, capture_output=True,
                              text=True, timeout=900, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr
        ran += 1
    assert ran == len(commands) - 1
    files = sorted(p for pattern in reports for p in glob.glob(str(work / pattern)))
    assert [Path(f).name for f in files] == ["config.xml", "data.xml", "model.xml"]
    for f in files:
        suite = ET.parse(f).getroot().find("testsuite")
        assert suite is not None and int(suite.get("tests", "0")) >= 4 and suite.get("failures") == "0"
    model = ET.parse(work / "reports" / "model.xml").getroot()
    assert {c.get("name") for c in model.iter("testcase")} >= {"exists", "loads", "probe"}

    # the same job on a broken data file stops at the data step with exit 1 and a failure in the report
    import pandas as pd

    frame = pd.read_parquet(work / "data" / "customers.parquet")
    frame["churned"] = 0  # one class: class_balance fails (action fail in the example config)
    frame.to_parquet(work / "data" / "customers.parquet", index=False)
    step = next(c for c in commands if c.startswith("modelpilot check data"))
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", step], cwd=work, env=ENV, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [c.get("name") for c in ET.parse(work / "reports" / "data.xml").getroot().iter("testcase")
              if c.find("failure") is not None]
    assert failed, done.stdout
