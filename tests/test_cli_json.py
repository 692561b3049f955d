"""``--json`` prints JSON and nothing else on stdout, whatever the estimator prints."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELPILOT, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=600, check=False)


def init(folder: Path, estimator: str, params: str | None = None, n_trials: int = 2) -> None:
    assert run(folder, "init").returncode == 0
    config = folder / "pilot.yaml"
    text = re.sub(r"  # estimator: .*", f"  estimator: {estimator}", config.read_text())
    if params is not None:
        text = re.sub(r"  # params: .*", f"  params: {params}", text)
    text = re.sub(r"n_trials: \d+", f"n_trials: {n_trials}", text)
    config.write_text(text)


def test_lightgbm_trains_quietly_and_json_stays_json(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    init(tmp_path, "lightgbm.LGBMClassifier")

    done = run(tmp_path, "train", "--json", "--no-tune")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    # silenced at the source (verbosity=-1), not only moved to stderr
    assert "[LightGBM]" not in done.stderr


def test_an_estimator_that_prints_cannot_spoil_the_json(tmp_path: Path) -> None:
    # HistGradientBoosting with verbose=1 prints its progress to stdout, in the CLI's own
    # process (the final fit) and in the tuning workers (two trials)
    init(tmp_path, "sklearn.ensemble.HistGradientBoostingClassifier", params="{verbose: 1}")

    done = run(tmp_path, "train", "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    assert "Binning" in done.stderr and "trees in" in done.stderr  # the chatter went to stderr
