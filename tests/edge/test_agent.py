"""The agent: stdlib + NumPy + onnxruntime only; counts that give the figures of raw rows;
bad input refused, counted and kept; an outage replayed exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from edge_helpers import Fleet, free_port, rezip, shifted_frame, src_env, write_csv
from serving_helpers import CATEGORICAL, NUMERIC, SIGNATURE, make_frame

from modelpilot import auth
from modelpilot.edge.agent import Agent, Home, SchemaMismatch, open_bundle
from modelpilot.edge.home import drift_from_counts, performance_from_counts, pool
from modelpilot.monitoring import drift_report, performance

BLOCKER = r"""
import sys
ALLOWED = {"modelpilot", "modelpilot.edge", "modelpilot.edge.agent", "modelpilot.edge.ed25519"}
BLOCKED = ("pandas", "sklearn", "scipy", "cryptography", "pyarrow", "sqlalchemy", "fastapi", "pydantic",
           "skl2onnx", "onnx.", "duckdb", "orjson", "httpx", "requests", "yaml")
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("modelpilot") and name not in ALLOWED or name.startswith(BLOCKED) or name == "onnx":
            raise ImportError(f"the device has no {name}")
        return None
sys.meta_path.insert(0, Blocker())
from modelpilot.edge.agent import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.startswith(("pandas", "sklearn", "scipy", "cryptography")))
assert not loaded, loaded
sys.exit(code)
"""


def _rows(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def _report(agent: Agent) -> dict:
    seq = agent.close_window()
    assert seq is not None
    return json.loads((agent.outbox.root / f"{seq:012d}.json").read_text())


def test_the_agent_runs_with_only_numpy_onnxruntime_and_the_standard_library(fleet: Fleet, tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(fleet.bundle)
    data = write_csv(tmp_path / "rows.csv", make_frame(300, 5))
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(bundle), "--source", str(data), "--public-key", str(fleet.public_path),
         "--state", str(tmp_path / "state"), "--window-rows", "100", "--batch", "50"],
        env=src_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    reports = sorted((tmp_path / "state" / "outbox").glob("*.json"))
    reports = [json.loads(p.read_text()) for p in reports if p.stem.isdigit()]
    assert [r["seq"] for r in reports] == [1, 2, 3] and sum(r["rows"] for r in reports) == 300
    assert len((tmp_path / "state" / "predictions.csv").read_text().splitlines()) == 300  # kept on the device


def test_a_refused_bundle_stops_the_agent_before_it_loads_anything(fleet: Fleet, tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(rezip(fleet.bundle, {"profile.json": b'{"numeric": {}}'}))
    proc = subprocess.run(
        [sys.executable, "-m", "modelpilot.edge.agent", str(bundle), "--source", str(tmp_path),
         "--public-key", str(fleet.public_path), "--state", str(tmp_path / "state")],
        env=src_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "refused bundle" in proc.stderr and "nothing was loaded" in proc.stderr
    assert not (tmp_path / "state" / "outbox").exists()


@pytest.mark.parametrize("method", ["psi", "jensenshannon", "chi2"])
def test_figures_from_the_counts_equal_the_figures_from_the_raw_rows(fleet: Fleet, tmp_path: Path, method: str) -> None:
    b = open_bundle(fleet.bundle, fleet.public_key)
    agent = Agent(b, fleet.public_key, tmp_path / "s", batch=97)
    frame = pd.concat([make_frame(400, 7), shifted_frame(200, 8)], ignore_index=True)
    frame.loc[::17, "age"] = np.nan
    frame.loc[::23, "plan"] = None
    frame.loc[::29, "region"] = "atlantis"  # unseen category: "other"
    agent.feed(_rows(frame))
    report = _report(agent)
    agg = pool([report])
    # the same rows, scored by the same graph, judged from raw rows by monitoring
    columns, _, _ = agent.parse(_rows(frame))
    labels, scores = agent.scorer.score(columns)
    ref = fleet.artifacts.get_bytes(fleet.store.get_version("churn", 1).reference_key)
    ref = json.loads(ref)
    raw = drift_report(ref, frame[NUMERIC + CATEGORICAL], method=method, scores=scores,
                       predictions=np.array([str(v) for v in labels]))
    counted = drift_from_counts(ref, agg, method)
    assert raw["drifted_columns"] == counted["drifted_columns"] and raw["drifted_columns"]
    for name, col in raw["columns"].items():
        assert counted["columns"][name]["statistic"] == col["statistic"], name
        assert counted["columns"][name]["p_value"] == col["p_value"], name
    for key in ("score", "label"):
        assert counted["prediction_drift"][key]["statistic"] == raw["prediction_drift"][key]["statistic"]
    # performance from the confusion counts equals performance on the labelled rows
    perf = performance(frame["churned"].astype(str).to_numpy(), np.array([str(v) for v in labels]),
                       task="classification", classes=["0", "1"])["overall"]
    got = performance_from_counts(agg["labelled"]["*"], "classification", [0, 1])
    assert got["accuracy"] == pytest.approx(perf["accuracy"], abs=1e-12)
    assert got["f1"] == pytest.approx(perf["f1"], abs=1e-12) and got["n"] == len(frame)


def test_a_report_holds_counts_never_rows(fleet: Fleet, tmp_path: Path) -> None:
    agent = Agent(open_bundle(fleet.bundle, fleet.public_key), fleet.public_key, tmp_path / "s")
    frame = make_frame(50, 3)
    frame["income"] = 123_456.789 + np.arange(50)
    agent.feed(_rows(frame))
    text = json.dumps(_report(agent))
    assert "123456" not in text and "123457" not in text
    assert len(text) < 4000


def test_bad_values_and_a_schema_mismatch_are_counted_and_nothing_is_lost(fleet: Fleet, tmp_path: Path) -> None:
    agent = Agent(open_bundle(fleet.bundle, fleet.public_key), fleet.public_key, tmp_path / "s")
    rows = _rows(make_frame(20, 4))
    rows[3]["age"] = "not a number"
    rows[7]["plan"] = {"nested": 1}
    assert agent.feed(rows) == 18
    kept = [json.loads(line) for line in (tmp_path / "s" / "rejected.jsonl").read_text().splitlines()]
    assert [k["row"]["age"] for k in kept][0] == "not a number" and len(kept) == 2
    wrong = write_csv(tmp_path / "wrong.csv", make_frame(10, 4).drop(columns=["region"]))
    with pytest.raises(SchemaMismatch, match=r"lacks the columns \['region'\]"):
        agent.feed_file(wrong)
    assert wrong.exists()
    report = _report(agent)
    assert report["errors"] == {"bad_value": 2, "schema": 1} and report["rows"] == 18
    assert report["events"][0]["kind"] == "schema_mismatch"


def test_an_outage_is_replayed_in_order_exactly_once(fleet: Fleet, tmp_path: Path) -> None:
    from modelpilot.serving import create_app, start_in_thread

    fleet.store.add_device("d1", "churn")
    token = auth.create_device_token(fleet.store, "d1")
    agent = Agent(open_bundle(fleet.bundle, fleet.public_key), fleet.public_key, tmp_path / "s", device="d1",
                  home=Home(f"http://127.0.0.1:{free_port()}", "d1", token, timeout=2), window_rows=50, batch=50)
    agent.feed(_rows(make_frame(200, 6)))  # home is down: every report stays in the outbox
    agent.close_window()
    assert len(agent.outbox.pending()) == 4 and agent.counters["send_failed"] >= 1
    handle, url = start_in_thread(create_app(fleet.cfg, fleet.store, fleet.artifacts))
    try:
        agent.home = Home(url, "d1", token)
        first = agent.outbox.pending()[0].read_bytes()
        assert agent.flush() == 4 and not agent.outbox.pending()
        stored = fleet.store.edge_reports("churn", device="d1")
        assert [r.seq for r in stored] == [1, 2, 3, 4] and sum(r.rows for r in stored) == 200
        # the same report again (a device that crashed before deleting it): acknowledged, not stored
        again = httpx.post(f"{url}/v1/edge/d1/report", content=first, headers={"Authorization": f"Bearer {token}"})
        assert again.status_code == 200 and again.json() == {"duplicate": True, "seq": 1}
        assert len(fleet.store.edge_reports("churn", device="d1")) == 4
        assert fleet.store.get_device("d1").info["duplicates"] == 1
    finally:
        handle.stop()


@pytest.mark.slow  # converts a second model (regression) to ONNX: ~10-30 s on a loaded machine
def test_regression_error_sums_give_the_metrics_of_the_labelled_rows(fleet: Fleet, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from sklearn.ensemble import HistGradientBoostingRegressor

    from modelpilot.edge.bundle import build_bundle
    from modelpilot.edge.export import registered_graph
    from modelpilot.monitoring.reference import build_reference
    from modelpilot.training import build_pipeline
    from modelpilot.training.package import save_onnx

    train, live = make_frame(600, 1), make_frame(400, 2)
    live.loc[::13, "income"] = np.nan
    features = NUMERIC + CATEGORICAL
    pipe = build_pipeline(SimpleNamespace(numeric=NUMERIC, categorical=CATEGORICAL),
                          HistGradientBoostingRegressor(max_iter=20, random_state=0)).fit(train[features], train["spend"])
    onnx = save_onnx(fleet.artifacts, pipe, SIGNATURE, train[features].head(200))
    record = fleet.store.register_version(
        "spend", run_id=None, artifact_key="-", reference_key=None, signature=SIGNATURE, task="regression",
        classes=None, metrics={}, lineage={"onnx": onnx})
    ref = build_reference(train[features], numeric=NUMERIC, categorical=CATEGORICAL, scores=pipe.predict(train[features]))
    data = build_bundle(record, registered_graph(fleet.artifacts, record)[0], ref, fleet.key, inputs=onnx["inputs"],
                        output=onnx["output"], target="spend", segments=["plan"])
    agent = Agent(open_bundle(data, fleet.public_key), fleet.public_key, tmp_path / "s")
    agent.feed(_rows(live.drop(columns=["churned"])))
    agg = pool([_report(agent)])
    columns, _, _ = agent.parse(_rows(live))
    predicted, _ = agent.scorer.score(columns)
    want = performance(live["spend"].to_numpy(), predicted, task="regression")
    got = performance_from_counts(agg["labelled"]["*"], "regression")
    for metric in ("rmse", "mae", "r2"):
        assert got[metric] == pytest.approx(want["overall"][metric], rel=1e-9), metric
    basic = live["plan"] == "basic"
    seg = performance_from_counts(agg["labelled"]["plan=basic"], "regression")
    assert seg["n"] == int(basic.sum())
    assert seg["mae"] == pytest.approx(float(np.mean(np.abs(predicted[basic.to_numpy()] - live["spend"][basic]))))
    # the graph agrees with the pipeline it was checked against
    assert np.allclose(predicted, pipe.predict(live[features]), rtol=1e-4, atol=1e-3)


def test_rows_from_stdin(fleet: Fleet, tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(fleet.bundle)
    lines = "\n".join(json.dumps(r) for r in _rows(make_frame(120, 9))) + "\n"
    proc = subprocess.run(
        [sys.executable, "-m", "modelpilot.edge.agent", str(bundle), "--source", "-", "--public-key",
         str(fleet.public_path), "--state", str(tmp_path / "state")],
        input=lines, env=src_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [report] = [json.loads(p.read_text()) for p in (tmp_path / "state" / "outbox").glob("0*.json")]
    assert report["rows"] == 120 and report["labelled"]["*"]
