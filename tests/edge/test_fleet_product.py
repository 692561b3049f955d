"""The fleet loop on the product's own path: `modelpilot init` data, `train`, export, and a
retrain started by device aggregates that trains, publishes and canaries the new version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from edge_helpers import src_env

from modelpilot import Pilot
from modelpilot.edge.agent import Agent, open_bundle
from modelpilot.edge.bundle import keygen, published, published_bundle
from modelpilot.edge.export import export_version, fleet_pass

pytestmark = pytest.mark.slow


def _rows(frame: pd.DataFrame) -> list[dict]:  # type: ignore[type-arg]
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in frame.drop(columns=["ts"]).to_dict("records")]


def test_a_retrain_from_aggregates_trains_publishes_and_canaries(tmp_path: Path) -> None:
    done = subprocess.run([str(Path(sys.executable).with_name("modelpilot")), "init"], cwd=tmp_path,
                          env=src_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    raw = yaml.safe_load((tmp_path / "pilot.yaml").read_text())
    raw["tuning"] = {"enabled": False}
    raw["triggers"]["feature_drift"] = {"enabled": True, "threshold": 0.2, "min_samples": 200}
    raw["triggers"]["drift_requires_performance"] = False
    raw["edge"] = {"min_rows": 200, "canary_share": 0.5}
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump(raw))
    data = pd.read_parquet(tmp_path / "data" / "customers.parquet")
    with Pilot.from_config(tmp_path / "pilot.yaml") as pilot:
        first = pilot.train()
        assert pilot.store.get_version("churn", first.version).lineage["onnx"]["status"] == "converted"
        _, public = keygen(pilot.cfg.resolve_path(pilot.cfg.edge.signing_key))
        export_version(pilot.cfg, pilot.store, pilot.artifacts, publish_it=True)
        bundle_key = bytes.fromhex(public.read_text())
        bundle = open_bundle(published_bundle(pilot.store, pilot.artifacts, "churn", first.version)[0], bundle_key)
        shifted = data.tail(600).copy()
        shifted["monthly_spend"] *= 3
        shifted["plan"] = shifted["plan"].iloc[0]
        for name, frame in (("steady", data.head(600)), ("moved", shifted)):
            pilot.store.add_device(name, "churn")
            agent = Agent(bundle, bundle_key, tmp_path / name, device=name)
            assert agent.feed(_rows(frame)) == 600
            seq = agent.close_window()
            doc = json.loads((tmp_path / name / "outbox" / f"{seq:012d}.json").read_text())
            pilot.store.add_edge_report(name, version=first.version, seq=1, rows=600, size=500, payload=doc)
        out = fleet_pass(pilot)
        assert {d for d, i in out["devices"].items() if i["flagged"]} == {"moved"}
        assert out["retrain"], out["decisions"]
        new = out["rollout"]["candidate"]
        assert new == first.version + 1 and out["rollout"]["status"] == "in_progress"
        assert published(pilot.store, "churn", new) is not None  # devices can pull it
        assert open_bundle(published_bundle(pilot.store, pilot.artifacts, "churn", new)[0], bundle_key).version == new
        assert pilot.store.get_alias("churn", "champion") == first.version  # the canary decides, later
