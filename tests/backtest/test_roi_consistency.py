"""One definition of cost, value and ROI: the backtest's JSON and the dashboard agree on a run."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from modelpilot.artifacts import open_artifacts
from modelpilot.backtest import parse_policies, run_backtest
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario
from modelpilot.store import Store
from modelpilot.ui import create_ui_app

with warnings.catch_warnings():  # starlette deprecates httpx in its TestClient; it still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _cells(html: str, table_id: str) -> list[list[str]]:
    body = html[html.index(f'id="{table_id}"'):]
    body = body[: body.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S)]
            for r in rows]


def test_backtest_json_and_cost_page_show_the_same_roi(tmp_path: Path) -> None:
    frame, info = scenario("sudden", 12_000, seed=0)
    cfg = PilotConfig.from_dict({
        "model": {"name": "bt", "target": "y", "time_column": "ts", "segments": ["segment"], "seed": 0},
        # roi_min_cost 0: the few CPU seconds of a replay get a ratio too, so it can be compared
        "costs": {"value_per_correct_prediction": 0.2, "cost_per_error": 0.3, "roi_min_cost": 0.0,
                  "compute_per_hour": 5.0},
    })
    result = run_backtest(frame, cfg, parse_policies(["dynamic"], cfg), batch=500, label_delay=1,
                          scenario=info, workdir=tmp_path)
    [dynamic] = [p for p in json.loads(json.dumps(result.to_dict()))["policies"] if p["name"] == "dynamic"]
    assert dynamic["retrains"] >= 1 and dynamic["value"] is not None and dynamic["paired"] > 0
    assert dynamic["roi"] == pytest.approx(dynamic["net_value"] / dynamic["cost"])

    folder = tmp_path / "dynamic"
    store = Store.open(f"sqlite:///{folder / 'store.db'}")
    try:
        app = create_ui_app(cfg, store, open_artifacts(str(folder / "artifacts")))
        with TestClient(app) as client:
            page = client.get("/ui/models/bt/cost").text
    finally:
        store.close()
    per_retrain = [c for c in _cells(page, "per-retrain") if c][::-1]  # the page lists the newest first
    report = dynamic["roi_report"]["retrains"]
    assert len(per_retrain) == len(report) == dynamic["retrains"]
    for cells, row in zip(per_retrain, report, strict=True):
        assert cells[0] == f"run {row['run']}" and cells[3] == row["outcome"].replace("_", " ")
        assert cells[6] == f"{row['paired']:,}" and cells[7] == f"{row['served']:,}"
        assert cells[8] == ("—" if row["value"] is None else f"{row['value']:,.2f}")
        assert cells[10] == ("—" if row["roi"] is None else f"{row['roi']:.2f}")
    assert f"{dynamic['value']:,.2f} USD" in page and f"{dynamic['net_value']:,.2f} USD" in page
    assert f"{dynamic['roi']:.2f}" in page
    assert f"{dynamic['served']:,} predictions served; measured on {dynamic['paired']:,} labelled rows" in page
