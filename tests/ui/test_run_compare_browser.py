"""The run-compare page in headless Chromium: both runs' metrics drawn by Plotly, no console errors.

A small store of its own (two experiment runs logged with ``pilot.run``) served by the
dashboard app; the browser fixture is the one of ``tests/ui/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpilot.pilot import Pilot

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    from modelpilot.serving.server import start_in_thread
    from modelpilot.ui.app import create_ui_app

    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump({"model": {"name": "churn", "target": "y"}}))
    with Pilot.from_config(tmp_path / "pilot.yaml") as pilot:
        ids = []
        for name, scale in (("shallow", 1.0), ("deep", 0.5)):
            with pilot.run(name, params={"depth": 3 if scale == 1.0 else 8}) as run:
                for step in range(6):
                    run.log_metric("loss", scale / (step + 1), step)
                run.log_metric("accuracy", 0.9 - scale / 10)
            ids.append(run.id)
        server, url = start_in_thread(create_ui_app(pilot.cfg, pilot.store, pilot.artifacts))
        try:
            yield url, ids[0], ids[1]
        finally:
            server.stop()


def test_the_compare_page_draws_both_runs(browser: Any, served: tuple[str, int, int]) -> None:
    url, a, b = served
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{url}/ui/runs", wait_until="load")
        page.select_option("select[name=a]", str(a))
        page.select_option("select[name=b]", str(b))
        page.click("button[type=submit]")
        page.wait_for_url(f"**/ui/runs/compare?a={a}&b={b}")
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .plot-container').length >= 2",
                               timeout=15_000)
        assert page.locator(".js-plotly-plot").count() == 2
        legends = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot .legendtext')]"
                                ".map(t => t.textContent)")  # SVG text: no innerText
        assert f"A: run {a} shallow" in legends and f"B: run {b} deep" in legends
        # the per-step figure holds one line per run with all six points
        points = page.evaluate("""() => {
            const plots = document.querySelectorAll('.js-plotly-plot');
            return plots[plots.length - 1].data.map(t => [t.name, t.y.length]);
        }""")
        assert sorted(points) == sorted([[f"A: run {a} shallow", 6], [f"B: run {b} deep", 6]])
        assert "depth" in page.locator("table").first.inner_text()
        assert not errors, errors
    finally:
        context.close()
