"""``modelpilot backtest`` end to end: bad input, the JSON schema, the HTML report."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelpilot.data.synth import scenario


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelpilot.cli", "backtest", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sudden-drift stream, slightly out of time order, with a few missing targets."""
    frame, _ = scenario("sudden", 6000, seed=3)
    frame = frame.astype({"y": "float64"})
    frame.loc[frame.index[[10, 2500, 4500]], "y"] = np.nan
    frame = frame.iloc[np.r_[1, 0, 2:len(frame)]]  # two rows swapped
    path = tmp_path_factory.mktemp("history") / "history.parquet"
    frame.to_parquet(path, index=False)
    return path


class _Charts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.plot_divs: list[str] = []
        self.script_srcs: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and "plotly-graph-div" in (a.get("class") or ""):
            self.plot_divs.append(a.get("id") or "")
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
            if a.get("src"):
                self.script_srcs.append(a["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def test_backtest_writes_json_and_an_offline_report(history: Path, tmp_path: Path) -> None:
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump({
        "model": {"name": "churn", "target": "y", "time_column": "ts"},
        "costs": {"compute_per_hour": 1.0, "value_per_correct_prediction": 0.5, "cost_per_error": 0.5},
        "policies": {"every3": {"kind": "fixed", "every": 3}},
    }))
    out = _cli("--data", str(history), "-c", "pilot.yaml", "--policy", "never", "--policy", "every3",
               "--policy", "dynamic", "--batch", "500", "--initial", "1500", "--seed", "1",
               "--json", "out.json", "--report", "report.html", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "not in time order: sorted by 'ts'" in out.stderr
    assert "3 rows without a value of 'y' were skipped" in out.stderr

    result = json.loads((tmp_path / "out.json").read_text())
    assert result["metric"] == "accuracy" and result["batches"] == (5997 - 1500) // 500
    assert result["skipped_missing_target"] == 3
    assert [p["name"] for p in result["policies"]] == ["never", "every3", "dynamic"]
    for p in result["policies"]:
        assert set(p) >= {"name", "mean_metric", "metric_by_batch", "retrains", "retrain_batches",
                          "retrain_reasons", "train_cpu_seconds", "cost", "value", "net_value", "roi",
                          "roi_note", "served", "paired", "roi_report"}
        assert len(p["metric_by_batch"]) == result["batches"]
        assert all(isinstance(v, float) and 0 <= v <= 1 for v in p["metric_by_batch"])
        assert p["mean_metric"] == pytest.approx(float(np.mean(p["metric_by_batch"])))
        assert p["retrains"] == len(p["retrain_batches"]) == len(p["retrain_reasons"])
        assert isinstance(p["cost"], float) and isinstance(p["train_cpu_seconds"], float)
    never, every3, dynamic = result["policies"]
    assert never["retrains"] == 0 and never["cost"] == 0 and never["value"] is None and never["roi"] is None
    assert every3["retrain_batches"] == [2, 5]  # 8 batches: 0..7
    assert all(r.startswith("fixed cadence") for r in every3["retrain_reasons"])
    assert dynamic["retrains"] >= 1 and "below the reference" in dynamic["retrain_reasons"][0]
    # value = predictions served x (0.5 + 0.5) x the difference realised against the retired
    # champion on the rows both scored; each promotion's, added up
    rows = dynamic["roi_report"]["retrains"]
    promoted = [r for r in rows if r["outcome"] == "promoted"]
    measured = [r for r in promoted if r["paired"] > 0]
    assert measured and all(r["served"] >= r["paired"] for r in measured)
    for r in measured:
        assert r["value"] == pytest.approx(r["served"] * 1.0 * r["difference"]["difference"], abs=1e-6)
    # a promotion with no labelled row scored by both models yet has no value, and says so
    assert all(r["value"] is None for r in promoted if r["paired"] == 0)
    assert dynamic["unmeasured"] == len(promoted) - len(measured)
    assert dynamic["value"] == pytest.approx(sum(r["value"] for r in measured), abs=1e-6)
    assert dynamic["net_value"] == pytest.approx(dynamic["value"] - dynamic["cost"], abs=1e-6)
    # a few CPU seconds cost a fraction of a cent: no ratio over it (costs.roi_min_cost)
    assert dynamic["cost"] < 0.01 and dynamic["roi"] is None and "roi_min_cost" in dynamic["roi_note"]

    page = (tmp_path / "report.html").read_text()
    charts = _Charts()
    charts.feed(page)
    assert charts.plot_divs == ["metric-chart", "cost-chart"]
    assert charts.script_srcs == []  # plotly.js is embedded: the page works offline
    assert sum("Plotly.newPlot" in s for s in charts.scripts) == 2
    assert any("plotly.js v" in s or "Plotly" in s and len(s) > 1_000_000 for s in charts.scripts)
    figure = json.loads(_figure_json(page, "metric-chart"))
    names = [t["name"] for t in figure if t.get("mode") == "lines"]
    assert names == ["never", "every3", "dynamic"]


def _figure_json(page: str, div_id: str) -> str:
    """The data array passed to Plotly.newPlot for ``div_id``."""
    start = page.index(f'Plotly.newPlot(                        "{div_id}",') if f'Plotly.newPlot(                        "{div_id}",' in page else page.index(f'"{div_id}",', page.index("Plotly.newPlot"))
    begin = page.index("[", start)
    depth = 0
    for i in range(begin, len(page)):
        depth += {"[": 1, "]": -1}.get(page[i], 0)
        if depth == 0:
            return page[begin : i + 1]
    raise AssertionError("no figure data")


@pytest.mark.parametrize(("args", "message"), [
    (["--batch", "9000"], "--batch 9000 is larger than the"),
    (["--policy", "sometimes"], "unknown policy 'sometimes': use one of never, fixed:every=N, dynamic"),
    (["--target", "nope"], "no target column 'nope'"),
])
def test_bad_input_is_a_clear_message_and_exit_code_1(args: list[str], message: str, history: Path,
                                                      tmp_path: Path) -> None:
    base = ["--data", str(history), "--time-col", "ts"]
    if "--target" not in args:
        base += ["--target", "y"]
    out = _cli(*base, *args, cwd=tmp_path)
    assert out.returncode == 1
    assert message in out.stderr.replace("\n", " ")
    assert "Traceback" not in out.stderr
