"""The ``modelpilot`` command, run for real in subprocesses inside a fresh folder.

Covers issue 2's "Done when" (``init && train`` in an empty folder, ``train --json`` agreeing
with ``status --json``) and its "Bad input" list: each bad input exits non-zero, names the
problem and the fix, prints no traceback and registers nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.store import Store

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))
# wide, plain output: Rich wraps at the terminal width and the assertions read whole sentences
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MODELPILOT, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def registered_versions(folder: Path) -> list[int]:
    """Versions in the folder's store (the default store of ``modelpilot init``'s config)."""
    db = folder / ".modelpilot" / "store.db"
    if not db.exists():
        return []
    store = Store.open(f"sqlite:///{db}")
    try:
        return [v.version for name in store.list_models() for v in store.list_versions(name)]
    finally:
        store.close()


def set_n_trials(folder: Path, n: int) -> None:
    config = folder / "pilot.yaml"
    text, count = re.subn(r"n_trials: \d+", f"n_trials: {n}", config.read_text())
    assert count == 1, "the example config no longer sets tuning.n_trials"
    config.write_text(text)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder after ``modelpilot init`` (copied by each test that needs one)."""
    folder = tmp_path_factory.mktemp("init")
    done = run(folder, "init")
    assert done.returncode == 0, done.stderr
    assert (folder / "pilot.yaml").exists() and (folder / "data" / "customers.parquet").exists()
    return folder


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(template, folder)
    return folder


def test_init_then_train_in_an_empty_folder(tmp_path: Path) -> None:
    done = run(tmp_path, "init")
    assert done.returncode == 0, done.stderr
    set_n_trials(tmp_path, 2)  # the example's 8 trials are the user's; 2 keep the test short

    done = run(tmp_path, "train")

    assert done.returncode == 0, done.stderr
    out = one_line(done.stdout)
    assert "churn version 1 (champion)" in out
    assert re.search(r"Metrics .* accuracy \S+ 0\.\d+ \S+ 0\.\d+", out), out  # train and validation
    assert "Segments (validation)" in out and re.search(r"region\s+\S*\s*north", out)
    assert "Top features (permutation importance)" in out and "support_calls" in out
    assert "Profile" in out and re.search(r"tune .* fit .* evaluate .* total", out)
    assert re.search(r"cost \d+\.\d+ USD \(compute", out)
    assert registered_versions(tmp_path) == [1]
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert status["models"][0]["aliases"] == {"champion": 1}

    # the champion scores a batch file, and every row goes to the prediction log
    done = run(tmp_path, "predict", "--input", "data/customers.parquet", "--output", "scored.parquet", "--json")
    assert done.returncode == 0, done.stderr
    scored = json.loads(done.stdout)
    rows = len(pd.read_parquet(tmp_path / "data" / "customers.parquet"))
    assert (scored["version"], scored["rows"], scored["logged"]) == (1, rows, rows)
    out = pd.read_parquet(tmp_path / "scored.parquet")
    assert len(out) == rows and {"prediction", "request_id"} <= set(out.columns)

    # --explain: each feature's contribution, adding up to the positive-class probability
    pd.read_parquet(tmp_path / "data" / "customers.parquet").head(40).to_parquet(tmp_path / "few.parquet")
    done = run(tmp_path, "predict", "--input", "few.parquet", "--output", "why.parquet", "--explain")
    assert done.returncode == 0, done.stderr
    why = pd.read_parquet(tmp_path / "why.parquet")
    parts = why.filter(like="contribution_")
    assert "contribution_support_calls" in parts.columns and len(why) == 40
    proba = why.filter(like="proba_").iloc[:, 1]
    gap = (why["base_value"] + parts.sum(axis=1) - why["explained_output"]).abs().max()
    assert gap < 1e-6, gap
    # the default HistGradientBoosting is explained exactly on its log-odds; the
    # contributions explain the scikit-learn pipeline, onnxruntime serves in float32
    assert set(why["explained_output_kind"]) == {"raw_score"}
    assert (1 / (1 + np.exp(-why["explained_output"])) - proba).abs().max() < 1e-5


def test_train_json_gives_the_same_facts_as_status_json(project: Path) -> None:
    # a lighter evaluation than the example's: this test is about the JSON, not the numbers
    _edit_config(project, "  metric: accuracy ", "  learning_curve: false\n  permutation_repeats: 1\n  metric: accuracy ")
    done = run(project, "train", "--json", "--no-tune")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is one JSON document: no progress bars mixed in
    expected = {"model", "version", "aliases", "metrics", "train_metrics", "segments",
                "feature_importance", "profile", "cost"}
    assert expected <= set(result), expected - set(result)
    assert result["model"] == "churn" and result["version"] == 1 and result["aliases"] == ["champion"]
    assert {"accuracy", "roc_auc", "f1", "log_loss"} <= set(result["metrics"])
    assert set(result["metrics"]) <= set(result["train_metrics"])
    assert {s["value"] for s in result["segments"] if s["segment"] == "region"} == {"north", "south", "east", "west"}
    assert result["feature_importance"] and "feature" in result["feature_importance"][0]
    assert result["profile"]["wall_s"] > 0 and "fit" in result["profile"]["stages"]
    assert result["cost"]["total"] > 0

    done = run(project, "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert [m["name"] for m in status["models"]] == ["churn"]
    model = status["models"][0]
    assert [v["version"] for v in model["versions"]] == [1]
    assert model["versions"][0]["metrics"] == result["metrics"]
    assert model["versions"][0]["run_id"] == result["run_id"]
    assert model["aliases"] == {alias: result["version"] for alias in result["aliases"]}


# --------------------------------------------------------------------------- bad input


def _point_source(folder: Path, source: str) -> None:
    config = folder / "pilot.yaml"
    config.write_text(config.read_text().replace("data/customers.parquet", source))


def _rewrite_data(folder: Path, name: str, change: Any) -> None:
    frame = pd.read_parquet(folder / "data" / "customers.parquet")
    frame = change(frame)
    path = folder / "data" / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path, index=False)
    _point_source(folder, f"data/{name}")


def _edit_config(folder: Path, old: str, new: str) -> None:
    config = folder / "pilot.yaml"
    text = config.read_text()
    assert old in text, f"the example config no longer contains {old!r}"
    config.write_text(text.replace(old, new))


def _text_in(column: str, value: str) -> Any:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[5, column] = value
        return frame

    return change


def _one_class(frame: pd.DataFrame) -> pd.DataFrame:
    frame["churned"] = frame["churned"].iloc[0]
    return frame


BAD_INPUTS: dict[str, tuple[Any, str]] = {
    "unknown column": (
        lambda f: _edit_config(f, "segments: [region, plan]", "segments: [regoin, plan]"),
        r"column 'regoin' named in model\.segments is not in the data \(did you mean 'region'\?\).*"
        r"fix model\.segments in pilot\.yaml",
    ),
    "unknown target": (
        lambda f: _edit_config(f, "target: churned", "target: churn"),
        r"column 'churn' named in model\.target is not in the data.*available columns: .*churned.*fix model\.target",
    ),
    "empty dataset": (
        lambda f: _rewrite_data(f, "empty.parquet", lambda d: d.iloc[:0]),
        r"empty\.parquet is empty \(0 rows\): check the file or the query",
    ),
    "target with one class": (
        lambda f: _rewrite_data(f, "one.parquet", _one_class),
        r"target column 'churned' has a single class .* needs at least two classes.*(data\.source|model\.task)",
    ),
    "text in a numeric column": (
        lambda f: _rewrite_data(f, "text.csv", _text_in("tenure_months", "twelve")),
        r"column 'tenure_months' is declared float but 1 values do not parse as numbers \(e\.g\. 'twelve'\).*"
        r"fix: clean the data or declare the column categorical",
    ),
    "text in an undeclared numeric column": (
        lambda f: _rewrite_data(f, "age.csv", _text_in("age", "old")),
        r"column 'age' .*numbers.*'old'.*fix: clean the data or declare the column categorical",
    ),
    "missing file": (
        lambda f: _point_source(f, "data/nowhere.parquet"),
        r"no data at \S*nowhere\.parquet: check data\.source in pilot\.yaml",
    ),
    "config typo": (
        lambda f: _edit_config(f, "n_trials: 8", "n_trails: 8"),
        r"tuning\.n_trails: unknown key; did you mean 'n_trials'\?",
    ),
    "config wrong type": (
        lambda f: _edit_config(f, "validation_fraction: 0.2", "validation_fraction: a fifth"),
        r"split\.validation_fraction: .*number.*got 'a fifth'",
    ),
    "missing config": (
        lambda f: (f / "pilot.yaml").unlink(),
        r"no config file at pilot\.yaml: run 'modelpilot init'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_with_a_message_and_registers_nothing(project: Path, case: str) -> None:
    spoil, message = BAD_INPUTS[case]
    spoil(project)

    done = run(project, "train", "--no-tune")

    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert re.search(message, one_line(done.stderr)), done.stderr
    assert one_line(done.stderr).count("error:") == 1
    assert registered_versions(project) == []
