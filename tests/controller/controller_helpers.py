"""A churn project on disk (pilot.yaml + history), a trained v1, and traffic scored by it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from modelpilot.artifacts import load_model
from modelpilot.controller.data import FEATURE_PREFIX
from modelpilot.controller.window import FrameWindow
from modelpilot.data.synth import customers
from modelpilot.pilot import Pilot
from modelpilot.serving import create_app, start_in_thread

# the traffic starts here: after the history (2026-01..) and before "now", so a window that
# ends at the wall clock holds all of it
TRAFFIC_START = datetime.now(UTC) - timedelta(days=20)


def base_config() -> dict[str, Any]:
    return {
        "model": {
            "name": "churn", "target": "churned", "task": "classification",
            "time_column": "ts", "id_column": "customer_id", "segments": ["region"],
        },
        "data": {"source": "data/customers.parquet"},
        "tuning": {"enabled": False, "n_trials": 3, "parallel": 1},
        "evaluation": {"metric": "accuracy", "permutation_repeats": 1, "importance_max_rows": 200,
                       "learning_curve": False},
        "gates": {"test": "bootstrap", "n_bootstrap": 300},
        "executor": {"workers": 1},
        "serving": {"refresh_interval": 0.1, "log_flush_interval": 60},
        "monitoring": {"window_size": 600, "min_samples": 150},
        "triggers": {
            "performance_drop": {"threshold": 0.05, "min_samples": 200, "cooldown": "1h"},
            "segment_performance_drop": {"threshold": 0.12, "min_samples": 100, "cooldown": "1h"},
        },
        "retraining": {"recent_rows": 800, "history_fraction": 0.2, "holdout_fraction": 0.3,
                       "min_rows_after_change": 300, "tune": False},
    }


def write_config(folder: Path, **sections: Any) -> Path:
    """Write ``pilot.yaml``: the base config with ``sections`` merged in, section by section."""
    raw = base_config()
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    path = folder / "pilot.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the history, a store and artifacts holding v1 as champion.

    Trained once: the tests copy it (v1 does not depend on the sections they change).
    """
    folder = tmp_path_factory.mktemp("trained")
    (folder / "data").mkdir()
    history = customers(3000, seed=0)
    history.insert(0, "customer_id", [f"H{i:06d}" for i in range(len(history))])
    history.to_parquet(folder / "data" / "customers.parquet", index=False)
    with Pilot.from_config(write_config(folder)) as pilot:
        result = pilot.train()
        assert (result.version, result.aliases) == (1, ["champion"])
    return folder


def copy_project(template: Path, folder: Path, **sections: Any) -> Path:
    """A copy of the trained project in ``folder`` with its own config; returns pilot.yaml."""
    shutil.copytree(template, folder)
    return write_config(folder, **sections)


@pytest.fixture
def make_pilot(trained_project: Path, tmp_path: Path) -> Iterator[Any]:
    """``make_pilot(**sections)``: a fresh copy of the trained project, opened as a Pilot."""
    made: list[Pilot] = []

    def make(**sections: Any) -> Pilot:
        made.append(Pilot.from_config(copy_project(trained_project, tmp_path / "project", **sections)))
        assert made[-1].store.get_alias("churn", "champion") == 1
        return made[-1]

    yield make
    for p in made:
        p.close()


def stream(n_calm: int, n_drift: int, *, seed: int = 1) -> pd.DataFrame:
    """Traffic after the history: ``n_calm`` rows as before, then ``n_drift`` rows drifted."""
    parts = [customers(n_calm, seed=seed, start=TRAFFIC_START)] if n_calm else []
    if n_drift:
        start = parts[0]["ts"].max().to_pydatetime() if parts else TRAFFIC_START
        parts.append(customers(n_drift, seed=seed + 100, start=start, drift={"at": 0.0, "strength": 1.0}))
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "customer_id", [f"T{seed}-{i:06d}" for i in range(len(frame))])
    return frame


def scored(pilot: Pilot, rows: pd.DataFrame, version: int = 1) -> pd.DataFrame:
    """Prediction-log rows (as the server writes them) for ``rows``, labels already arrived."""
    record = pilot.store.get_version(pilot.cfg.model.name, version)
    names = [f["name"] for f in record.signature]
    model = load_model(pilot.artifacts, record.artifact_key)
    X = rows[names]
    proba = np.asarray(model.predict_proba(X))
    log = pd.DataFrame({FEATURE_PREFIX + c: X[c].to_numpy() for c in names})
    log.insert(0, "request_id", rows["customer_id"].to_numpy())
    log.insert(1, "ts", rows["ts"].to_numpy())
    log["model_version"] = version
    log["role"] = "primary"
    log["prediction"] = np.asarray(model.predict(X)).astype(str)
    log["score"] = proba[:, 1]
    log["probabilities"] = list(proba)
    log["label"] = rows["churned"].astype(str).to_numpy()  # feedback labels travel as strings
    return log


def window_of(pilot: Pilot, rows: pd.DataFrame) -> FrameWindow:
    window = FrameWindow()
    window.append(scored(pilot, rows))
    return window


def kinds(pilot: Pilot, *wanted: str) -> list[str]:
    """The model's event kinds in time order, only those in ``wanted`` (all when empty)."""
    events = reversed(pilot.store.events(model=pilot.cfg.model.name, limit=1000))
    return [e.kind for e in events if not wanted or e.kind in wanted]


def serve_traffic(pilot: Pilot, rows: pd.DataFrame) -> None:
    """Send ``rows`` through the real server and their labels to /feedback; flush the log."""
    app = create_app(pilot.cfg, pilot.store, pilot.artifacts)
    server, base = start_in_thread(app)
    url = f"{base}/v1/models/churn"
    names = [f["name"] for f in pilot.store.get_version("churn", 1).signature]
    try:
        with httpx.Client(timeout=60) as client:
            for start in range(0, len(rows), 200):
                part = rows.iloc[start : start + 200]
                instances = part[names].astype(object).where(part[names].notna(), None).to_dict("records")
                ids = part["customer_id"].tolist()
                client.post(f"{url}/predict", json={"instances": instances, "ids": ids}).raise_for_status()
                labels = part["churned"].astype(int).tolist()
                client.post(f"{url}/feedback", json={"ids": ids, "labels": labels}).raise_for_status()
        app.state.writer.flush()
    finally:
        server.stop()
