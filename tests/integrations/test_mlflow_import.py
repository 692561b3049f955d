"""``modelpilot import mlflow`` against a real MLflow SQLite store made by MLflow itself.

The store (mlflow_history.py, run in its own process) holds a servable skops model, a
cloudpickle model whose file is a pickle that would create a file when loaded, and a skops
model holding a type outside the allowlist. The import must copy every version, its run, its
metrics and params, load only the safe file, never unpickle, and add nothing the second time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from modelpilot.testing.services import unavailable

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
HERE = Path(__file__).resolve().parent

# MLflow writes its history in a process of its own: tens of seconds, minutes on a busy machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        unavailable("mlflow is not installed: pip install 'modelpilot[mlflow]' (or the test extra)")
    folder = tmp_path_factory.mktemp("mlflow")
    done = subprocess.run([sys.executable, str(HERE / "mlflow_history.py"), str(folder), str(folder / "PWNED")],
                          capture_output=True, text=True, timeout=600, check=False, cwd=folder)
    assert done.returncode == 0, done.stderr[-4000:]
    assert not (folder / "PWNED").exists()
    return folder


def import_into(project: Path, uri: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELPILOT, "import", "mlflow", "--tracking-uri", uri, "-c", str(project / "pilot.yaml"),
                           *extra], env=ENV, capture_output=True, text=True, timeout=600, check=False, cwd=project)


def test_import_copies_versions_runs_aliases_and_only_the_safe_model(history: Path, tmp_path: Path) -> None:
    from modelpilot.artifacts import load_model
    from modelpilot.pilot import Pilot

    project = tmp_path / "project"
    project.mkdir()
    (project / "pilot.yaml").write_text(yaml.safe_dump({"model": {"name": "churn-lr", "target": "churned"}}))
    uri = f"sqlite:///{history / 'mlflow.db'}"
    done = import_into(project, uri, "--json")
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    [model] = result["models"]
    assert (model["name"], model["imported"], model["existing"]) == ("churn-lr", 3, 0)
    assert model["aliases"] == {"champion": 1}
    assert set(model["skipped_aliases"]) == {"legacy", "challenger"}
    assert not (history / "PWNED").exists()  # the cloudpickle file was never unpickled

    with Pilot.from_config(project / "pilot.yaml") as pilot:
        store = pilot.store
        v1, v2, v3 = store.list_versions("churn-lr")
        assert [v.status for v in (v1, v2, v3)] == ["registered", "archived", "archived"]
        assert [v.lineage["mlflow"]["version"] for v in (v1, v2, v3)] == [1, 2, 3]
        assert v1.description == "first production model" and v1.task == "classification"
        assert [c["name"] for c in v1.signature] == ["tenure", "spend"] and v1.classes == [0, 1]
        assert v1.lineage["mlflow"]["aliases"] == ["champion"] and v1.lineage["mlflow"]["note"] is None
        assert "cloudpickle" in v2.lineage["mlflow"]["note"] and "never loads" in v2.lineage["mlflow"]["note"]
        assert v2.artifact_key == "" and v3.artifact_key == ""
        assert "allowlist" in v3.lineage["mlflow"]["note"] and "numpy.log1p" in v3.lineage["mlflow"]["note"]
        assert store.aliases("churn-lr") == {"champion": 1}

        # the imported file is the MLflow model: same predictions and probabilities
        expected = json.loads((history / "expected.json").read_text())
        rows = pd.DataFrame(expected["rows"])
        model_ = load_model(pilot.artifacts, v1.artifact_key)
        assert model_.predict(rows).tolist() == expected["predictions"]
        np.testing.assert_allclose(model_.predict_proba(rows), expected["proba"], rtol=1e-12)

        # each version's run: params, tags, every metric point with its step
        runs = {r.tags["name"]: r for r in store.list_runs(model="churn-lr", kind="mlflow")}
        assert set(runs) == {"lr-C0.1", "lr-C1.0", "lr-C10.0"}
        run = runs["lr-C0.1"]
        assert v1.run_id == run.id and run.status == "finished"
        assert run.params == {"C": "0.1", "imputer": "mean"} and run.tags["mlflow_tags"] == {"team": "risk"}
        assert [(p.step, p.value) for p in store.metric_history(run.id, "loss")] == [
            (s, round(1.0 / (s + 1.1), 6)) for s in range(4)]
        assert v1.metrics["loss"] == pytest.approx(round(1.0 / 4.1, 6)) and 0.5 < v1.metrics["accuracy"] <= 1.0
        events = len(store.events(model="churn-lr", limit=1000))

    again = import_into(project, uri, "--json")  # idempotent: nothing new, nothing written
    assert again.returncode == 0, again.stderr[-4000:]
    [model] = json.loads(again.stdout)["models"]
    assert (model["imported"], model["existing"], model["aliases"]) == (0, 3, {"champion": 1})
    with Pilot.from_config(project / "pilot.yaml") as pilot:
        assert len(pilot.store.list_versions("churn-lr")) == 3
        assert len(pilot.store.list_runs(model="churn-lr", kind="mlflow")) == 3
        assert len(pilot.store.events(model="churn-lr", limit=1000)) == events

    text = import_into(project, uri)  # the table form names why each version's file was left out
    assert text.returncode == 0 and "cloudpickle" in " ".join(text.stdout.split())

    # a new version registered in MLflow since: only it is copied, with the alias moved to it
    done = subprocess.run([sys.executable, str(HERE / "mlflow_history.py"), str(history), str(history / "PWNED"),
                           "more"], capture_output=True, text=True, timeout=600, check=False, cwd=history)
    assert done.returncode == 0, done.stderr[-4000:]
    later = import_into(project, uri, "--json")
    assert later.returncode == 0, later.stderr[-4000:]
    [model] = json.loads(later.stdout)["models"]
    assert (model["imported"], model["existing"]) == (1, 3)
    assert model["aliases"] == {"champion": 1, "challenger": 4}
    with Pilot.from_config(project / "pilot.yaml") as pilot:
        v4 = pilot.store.get_version("churn-lr", 4)
        assert v4.status == "registered" and v4.lineage["mlflow"]["version"] == 4
        assert pilot.store.aliases("churn-lr") == {"champion": 1, "challenger": 4}
        assert len(pilot.store.list_runs(model="churn-lr", kind="mlflow")) == 4


def test_an_unreachable_tracking_uri_is_a_clear_error(tmp_path: Path) -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        unavailable("mlflow is not installed: pip install 'modelpilot[mlflow]' (or the test extra)")
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump({"model": {"name": "m", "target": "y"}}))
    # MLflow's client retries a refused connection for minutes by default; one try says enough
    quick = {**ENV, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    done = subprocess.run([MODELPILOT, "import", "mlflow", "--tracking-uri", "http://127.0.0.1:9/", "--model",
                           "churn-lr", "-c", str(tmp_path / "pilot.yaml")], env=quick, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 1 and "cannot read registered models from http://127.0.0.1:9/" in done.stderr
    assert "Traceback" not in done.stderr
