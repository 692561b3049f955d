"""``pilot.run(name)``: runs, parameters, buffered metrics and artifacts on the training store;
``modelpilot runs list|show|compare``; the dashboard's run-compare page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from modelpilot.errors import ConfigError, NotFound, RequestError
from modelpilot.pilot import Pilot
from modelpilot.store import Store
from modelpilot.tracking import compare_runs, find_run

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture
def pilot(tmp_path: Path) -> Pilot:
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump({"model": {"name": "churn", "target": "y"}}))
    with Pilot.from_config(tmp_path / "pilot.yaml") as p:
        yield p


def two_runs(pilot: Pilot, tmp_path: Path) -> tuple[int, int]:
    notes = tmp_path / "notes.txt"
    notes.write_text("lr 0.1 looked unstable")
    with pilot.run("baseline", params={"lr": 0.1, "model": {"depth": 3}}) as a:
        for step in range(5):
            a.log_metric("loss", 1.0 / (step + 1), step)
        a.log_metric("accuracy", 0.80)
        a.log_artifact(notes)
    with pilot.run("deeper") as b:
        b.log_params({"lr": 0.1, "model": {"depth": 6}, "warm": True})
        for step in range(5):
            b.log_metric("loss", 0.5 / (step + 1), step)
        b.log_metrics({"accuracy": 0.86})
    return a.id, b.id


def test_a_run_records_params_metrics_artifacts_and_finishes(pilot: Pilot, tmp_path: Path) -> None:
    a, _ = two_runs(pilot, tmp_path)
    run = pilot.store.get_run(a)
    assert (run.kind, run.status, run.model, run.tags["name"]) == ("experiment", "finished", "churn", "baseline")
    assert run.params == {"lr": 0.1, "model": {"depth": 3}}
    assert [(p.step, p.value) for p in pilot.store.metric_history(a, "loss")] == [(s, 1.0 / (s + 1)) for s in range(5)]
    entry = run.tags["artifacts"]["notes.txt"]
    assert pilot.artifacts.get_bytes(entry["key"]) == b"lr 0.1 looked unstable" and entry["bytes"] == 22

    with pytest.raises(ZeroDivisionError), pilot.run("broken") as broken:
        broken.log_metric("loss", 1.0)
        raise ZeroDivisionError("in the user's code")
    failed = pilot.store.get_run(broken.id)
    assert failed.status == "failed" and "ZeroDivisionError: in the user's code" in (failed.error or "")
    assert pilot.store.latest_metrics(broken.id) == {"loss": 1.0}  # the buffered point was written first


def test_bad_input_is_refused_with_the_fix(pilot: Pilot, tmp_path: Path) -> None:
    with pilot.run("x") as run:
        with pytest.raises(RequestError, match="must be a number"):
            run.log_metric("loss", "low")  # type: ignore[arg-type]
        with pytest.raises(RequestError, match="JSON values"):
            run.log_params({"fn": print})
        with pytest.raises(ConfigError, match="is not a file"):
            run.log_artifact(tmp_path / "missing.bin")
        with pytest.raises(RequestError, match="set by the run itself"):
            run.set_tags({"name": "other"})
    with pytest.raises(RequestError, match="needs a name"):
        pilot.run(" ")
    with pytest.raises(NotFound, match="runs list"):
        find_run(pilot.store, "no-such-run")


def test_runs_are_visible_to_another_process_through_the_buffer(pilot: Pilot, tmp_path: Path) -> None:
    """Points logged without a flush reach the database within the buffer's age limit."""
    import time

    run = pilot.run("live")
    run.log_metric("loss", 0.3, 0)
    other = Store.open(pilot.cfg.store_url)
    try:
        deadline = time.monotonic() + 30
        while not other.latest_metrics(run.id) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert other.latest_metrics(run.id) == {"loss": 0.3}
        assert other.get_run(run.id).status == "running"
    finally:
        other.close()
    run.finish()


def test_compare_diffs_params_and_metrics(pilot: Pilot, tmp_path: Path) -> None:
    a, b = two_runs(pilot, tmp_path)
    result = compare_runs(pilot.store, find_run(pilot.store, "baseline"), find_run(pilot.store, str(b)), history=True)
    params = {p["name"]: p for p in result["params"]}
    assert params["lr"]["same"] and not params["model.depth"]["same"]
    assert (params["model.depth"]["a"], params["model.depth"]["b"]) == (3, 6)
    assert params["warm"]["a"] is None and not params["warm"]["same"]
    metrics = {m["name"]: m for m in result["metrics"]}
    assert metrics["accuracy"]["delta"] == pytest.approx(0.06)
    assert metrics["loss"]["a"] == pytest.approx(0.2) and metrics["loss"]["b"] == pytest.approx(0.1)
    assert [p[1] for p in result["history"]["loss"]["b"]] == pytest.approx([0.5 / (s + 1) for s in range(5)])


def test_runs_commands(pilot: Pilot, tmp_path: Path) -> None:
    a, b = two_runs(pilot, tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MODELPILOT, "runs", *args, "-c", str(tmp_path / "pilot.yaml")], env=ENV,
                              capture_output=True, text=True, timeout=120, check=False)

    listed = json.loads(run("list", "--json").stdout)
    assert [r["name"] for r in listed] == ["deeper", "baseline"]
    shown = json.loads(run("show", "baseline", "--json").stdout)
    assert shown["params"] == {"lr": 0.1, "model.depth": 3} and shown["metrics"]["accuracy"] == 0.8
    assert "notes.txt" in shown["artifacts"]
    done = run("compare", str(a), str(b))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("model.depth" in ln and "3" in ln and "6" in ln for ln in lines)
    assert not any(ln.lstrip("│ ").startswith("lr ") for ln in lines)  # equal parameters are hidden
    assert any("accuracy" in ln and "+0.06" in ln for ln in lines)
    done = run("show", "nope")
    assert done.returncode == 1 and "no run with id or name 'nope'" in done.stderr and "Traceback" not in done.stderr


def test_the_compare_page_plots_both_runs(pilot: Pilot, tmp_path: Path) -> None:
    from modelpilot.ui.app import create_ui_app

    a, b = two_runs(pilot, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with TestClient(create_ui_app(pilot.cfg, pilot.store, pilot.artifacts)) as client:
        listing = client.get("/ui/runs")
        assert listing.status_code == 200 and "baseline" in listing.text and "deeper" in listing.text
        page = client.get(f"/ui/runs/compare?a={a}&b=deeper")
        missing = client.get("/ui/runs/compare?a=1&b=404")
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert html.count('class="plotly-graph-div"') == 2  # last values and per-step history
    assert f"A: run {a} baseline" in html and f"B: run {b} deeper" in html
    figures = [json.JSONDecoder().raw_decode(chunk)[0] for chunk in _plot_data(html)]
    bars, lines = figures
    assert {t["name"] for t in bars} == {f"A: run {a} baseline", f"B: run {b} deeper"}
    by_name = {t["name"]: t for t in lines}
    assert by_name[f"A: run {a} baseline"]["y"] == pytest.approx([1.0 / (s + 1) for s in range(5)])
    assert by_name[f"B: run {b} deeper"]["y"] == pytest.approx([0.5 / (s + 1) for s in range(5)])
    assert missing.status_code == 404 and "no run with id 404" in missing.text


def _plot_data(html: str) -> list[str]:
    """The data argument of each ``Plotly.newPlot(id, data, layout, config)`` in the page."""
    out = []
    for part in html.split("Plotly.newPlot(")[1:]:
        after_id = part.split(",", 1)[1].strip()
        out.append(after_id)
    return out
