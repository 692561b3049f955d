"""The first hour with ``modelpilot init``: no contradictions, no late surprises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelpilot.config import EvaluationConfig, PilotConfig
from modelpilot.errors import ConfigError
from modelpilot.training.estimators import check_param_names

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELPILOT, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=600, check=False)


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    assert run(tmp_path, "init").returncode == 0
    return tmp_path


def test_the_init_config_is_not_stricter_than_the_documented_defaults(project: Path) -> None:
    cfg = PilotConfig.load(project / "pilot.yaml")
    assert cfg.evaluation.overfit_max_gap >= EvaluationConfig().overfit_max_gap
    docs = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    documented = re.search(r"`evaluation\.overfit_max_gap` \| ([\d.]+)", docs)
    assert documented and float(documented.group(1)) == EvaluationConfig().overfit_max_gap
    # a pip user has no src/ folder to read the defaults in
    assert "src/" not in (project / "pilot.yaml").read_text()


def test_a_second_training_says_how_to_promote_it(project: Path) -> None:
    first = run(project, "train", "--no-tune")
    assert first.returncode == 0, first.stderr
    assert "(champion)" in first.stdout and "modelpilot promote" not in first.stdout

    second = run(project, "train", "--no-tune")

    assert second.returncode == 0, second.stderr
    out = one_line(second.stdout)
    assert "version 2 (no alias)" in out
    assert "modelpilot promote 2 makes it the champion" in out


def test_a_misspelt_gate_metric_is_refused_before_anything_runs(project: Path) -> None:
    config = project / "pilot.yaml"
    config.write_text(config.read_text().replace("min_metrics: {accuracy: 0.7}", "min_metrics: {acuracy: 0.7}"))

    done = run(project, "train")

    assert done.returncode == 1
    assert re.search(r"gates\.min_metrics: unknown metric 'acuracy' under gates\.min_metrics; "
                     r"did you mean 'accuracy'\?", one_line(done.stderr)), done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / ".modelpilot").exists()  # no store opened, no run recorded


def test_a_gate_metric_of_the_other_task_is_refused_before_training(project: Path) -> None:
    config = project / "pilot.yaml"
    config.write_text(config.read_text().replace("min_metrics: {accuracy: 0.7}", "min_metrics: {rmse: 0.5}"))

    done = run(project, "train")

    assert done.returncode == 1
    assert "gates.min_metrics.rmse: 'rmse' is not a classification metric" in one_line(done.stderr)
    assert "tune" not in done.stderr  # stopped at validation, before the search


def test_a_misspelt_search_parameter_names_the_right_one() -> None:
    with pytest.raises(ConfigError, match=r"tuning\.space: .* has no parameter 'learning_rat'; "
                                          r"did you mean 'learning_rate'\?"):
        check_param_names(None, "classification", {"learning_rat": None}, "tuning.space")
