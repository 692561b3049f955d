"""Serving with online features: a request carrying only the entity key is answered like one
carrying the features, and the prediction log records the features that were looked up."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from modelpilot.data.online import FeatureTable
from modelpilot.pilot import Pilot
from modelpilot.serving import create_app, start_in_thread
from modelpilot.serving.logreader import PredictionLogReader

T0 = datetime(2026, 3, 1)


def write_project(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    n_feat, n_events = 600, 900
    feats = pd.DataFrame({
        "customer": [f"c{i}" for i in rng.integers(0, 40, n_feat)],
        "updated_at": [T0 + timedelta(minutes=int(m)) for m in rng.choice(30_000, n_feat, replace=False)],
        "spend_30d": rng.gamma(2.0, 50.0, n_feat).round(2),
        "plan": rng.choice(["free", "pro", "team"], n_feat),
    })
    events = pd.DataFrame({
        "customer": [f"c{i}" for i in rng.integers(0, 40, n_events)],
        "ts": [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 31_000, n_events)],
        "tenure": rng.integers(1, 60, n_events),
    })
    # the label depends on the point-in-time features, so the model must use them
    joined = pd.merge_asof(events.sort_values("ts"), feats.sort_values("updated_at"), left_on="ts",
                           right_on="updated_at", by="customer").sort_index()
    events["churned"] = ((joined["spend_30d"].fillna(100) < 80) ^ (joined["plan"] == "team")).astype(int)
    (folder / "data").mkdir()
    feats.to_parquet(folder / "data" / "features.parquet", index=False)
    events.to_parquet(folder / "data" / "events.parquet", index=False)
    cfg = {
        "model": {"name": "churn", "target": "churned", "time_column": "ts", "features": {"exclude": ["customer"]}},
        "data": {"source": "data/events.parquet"},
        "online_features": {"source": "data/features.parquet", "entity": ["customer"], "timestamp": "updated_at",
                            "features": ["spend_30d", "plan"]},
        "tuning": {"enabled": False},
        "evaluation": {"permutation_repeats": 1, "learning_curve": False},
        "executor": {"workers": 1},
        "serving": {"log_flush_interval": 60},
    }
    path = folder / "pilot.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow  # trains a model
def test_entity_only_requests_get_the_training_definition_of_features(tmp_path: Path) -> None:
    with Pilot.from_config(write_project(tmp_path)) as pilot:
        result = pilot.train()
        names = [f["name"] for f in pilot.store.get_version("churn", result.version).signature]
        assert set(names) == {"tenure", "spend_30d", "plan"}  # joined at training, key excluded
        table = FeatureTable.of(pilot.cfg)
        assert table is not None
        customers = ["c1", "c2", "c3", "c5", "c8"]
        latest = table.lookup([(c,) for c in customers])
        full = [{"tenure": 12, **row} for row in latest if row is not None]
        assert len(full) == len(customers)
        app = create_app(pilot.cfg, pilot.store, pilot.artifacts)
        server, base = start_in_thread(app)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                by_key = client.post("/v1/models/churn/predict", json={
                    "instances": [{"customer": c, "tenure": 12} for c in customers],
                    "ids": [f"k-{c}" for c in customers]})
                by_value = client.post("/v1/models/churn/predict", json={"instances": full})
                unknown = client.post("/v1/models/churn/predict", json={"instances": [{"customer": "zz", "tenure": 1}]})
            app.state.writer.flush()
        finally:
            server.stop()
        assert by_key.status_code == 200, by_key.text
        assert by_key.json()["predictions"] == by_value.json()["predictions"]
        assert by_key.json()["probabilities"] == by_value.json()["probabilities"]
        assert unknown.status_code == 422 and "no online features for customer ['zz']" in unknown.text
        # a batch file with only the keys: scored like the requests
        pd.DataFrame({"customer": customers, "tenure": 12}).to_parquet(tmp_path / "keys.parquet", index=False)
        pilot.predict(tmp_path / "keys.parquet", tmp_path / "scored.parquet")
        scored = pd.read_parquet(tmp_path / "scored.parquet")
        assert [str(p) for p in scored["prediction"]] == [str(p) for p in by_value.json()["predictions"]]
        reader = PredictionLogReader(pilot.artifacts, "churn")
        try:
            logged = reader.joined().set_index("request_id")
        finally:
            reader.close()
        for c, row in zip(customers, latest, strict=True):
            assert row is not None
            assert logged.at[f"k-{c}", "f_spend_30d"] == pytest.approx(row["spend_30d"])
            assert logged.at[f"k-{c}", "f_plan"] == row["plan"]
