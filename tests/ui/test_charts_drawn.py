"""Each dashboard chart in a real browser: what Plotly drew, not only that a page loaded.

Every builder of ``modelpilot.ui.charts`` gets small, known data; headless Chromium draws
the figure with the Plotly the dashboard serves. The checks read the SVG: every value has
its point or bar, nothing (points, bars, legend, titles, axis labels) lies outside the
figure where the browser clips it, and no two titles overlap. Then the specific failures:
a lone segment value between gaps is drawn, a long gap breaks the line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import plotly
import pytest

from modelpilot.ui import charts

pytestmark = pytest.mark.browser

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
T0 = datetime(2026, 3, 1, tzinfo=UTC)

# what the page knows about the drawn figure: the SVG's box and the boxes of everything in it
GEOMETRY = """(div) => {
  const svg = div.querySelector('svg.main-svg').getBoundingClientRect();
  const box = (el) => { const r = el.getBoundingClientRect();
                        return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, w: r.width, h: r.height}; };
  const all = (sel) => Array.from(div.querySelectorAll(sel)).filter(e => e.getBoundingClientRect().width > 0);
  return {
    svg: box(div.querySelector('svg.main-svg')),
    traces: Array.from(div.querySelectorAll('.scatterlayer .trace')).map(t => ({
        points: t.querySelectorAll('path.point').length,
        lines: Array.from(t.querySelectorAll('path.js-line')).map(p => (p.getAttribute('d') || '').split('M').length - 1)
                 .reduce((a, b) => a + b, 0)})),
    bars: all('.barlayer .point > path').length,
    heatmap: all('.heatmaplayer image').length,
    marks: all('path.point, .barlayer .point > path, .heatmaplayer image').map(box),
    texts: all('.legend, .gtitle, .xtitle, .ytitle, .annotation, .xtick text, .ytick text').map(e =>
                 ({cls: e.getAttribute('class') || e.parentNode.getAttribute('class') || '', text: e.textContent, ...box(e)})),
    titles: all('.gtitle, .annotation-text').map(e => ({text: e.textContent, ...box(e)})),
  };
}"""


@pytest.fixture(scope="module")
def draw(browser: Any) -> Iterator[Callable[[str], dict[str, Any]]]:
    # the width of a figure in one column of the dashboard's two-column grid
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    current = {"html": ""}
    # the figure and the Plotly the dashboard serves, from a made-up origin intercepted here
    page.route("http://charts.test/plotly.min.js", lambda route: route.fulfill(path=str(PLOTLY_JS)))
    page.route("http://charts.test/figure", lambda route: route.fulfill(
        content_type="text/html", body=current["html"]))

    def render(figure_html: str) -> dict[str, Any]:
        current["html"] = ("<html><head><script src='/plotly.min.js'></script></head><body>"
                           f"<div style='width:660px'>{figure_html}</div></body></html>")
        page.goto("http://charts.test/figure", wait_until="load")
        page.wait_for_function("document.querySelector('.js-plotly-plot .main-svg') !== null", timeout=15_000)
        page.wait_for_timeout(300)  # let the autosizing settle
        assert not errors, errors
        geometry: dict[str, Any] = page.evaluate(GEOMETRY, page.query_selector("div.plotly-graph-div"))
        return geometry

    yield render
    context.close()


def _inside(item: dict[str, Any], svg: dict[str, Any], slack: float = 1.0) -> bool:
    return (item["left"] >= svg["left"] - slack and item["right"] <= svg["right"] + slack
            and item["top"] >= svg["top"] - slack and item["bottom"] <= svg["bottom"] + slack)


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def assert_nothing_clipped(g: dict[str, Any]) -> None:
    svg = g["svg"]
    assert g["marks"], "nothing drawn"
    outside = [m for m in g["marks"] if not _inside(m, svg)]
    assert not outside, f"{len(outside)} of {len(g['marks'])} marks outside the figure"
    cut = [t for t in g["texts"] if not _inside(t, svg)]
    assert not cut, [(t["cls"], t["text"][:40]) for t in cut]
    titles = g["titles"]
    clashes = [(a["text"], b["text"]) for i, a in enumerate(titles) for b in titles[i + 1:] if _overlap(a, b)]
    assert not clashes, clashes


def points(**values: Any) -> list[Any]:
    return [SimpleNamespace(step=s, value=v) for s, v in values.items()]


def series(n: int, **columns: Any) -> pd.DataFrame:
    index = pd.DatetimeIndex([T0 + timedelta(hours=i) for i in range(n)], name="time")
    return pd.DataFrame(columns, index=index)


def event(kind: str, hours: float) -> Any:
    return SimpleNamespace(kind=kind, time=T0 + timedelta(hours=hours), subject="v2", reason="a reason")


def test_learning_curve_is_drawn_whole(draw: Callable[[str], dict[str, Any]]) -> None:
    stages = range(10, 310, 10)
    train = [SimpleNamespace(step=s, value=0.7 + s / 2000) for s in stages]
    validation = [SimpleNamespace(step=s, value=0.68 + s / 4000) for s in stages]

    g = draw(charts.learning_curve(train, validation, "accuracy"))

    assert [t["points"] for t in g["traces"]] == [0, 0] and all(t["lines"] >= 1 for t in g["traces"])
    assert any(t["cls"] == "legend" for t in g["texts"]) and any(t["text"] == "stage" for t in g["texts"])
    # the legend and the axis title are inside the figure and apart
    legend = next(t for t in g["texts"] if t["cls"] == "legend")
    xtitle = next(t for t in g["texts"] if t["cls"].startswith("xtitle"))
    assert not _overlap(legend, xtitle)
    g["marks"] = [legend]  # a line chart has no point marks; its legend and texts must fit
    assert_nothing_clipped(g)


def test_tuning_chart_titles_do_not_overlap(draw: Callable[[str], dict[str, Any]]) -> None:
    names = ["l2_regularization", "learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf", "max_features"]
    rng = np.random.default_rng(0)
    trial_params = {str(i): {"params": {n: float(rng.uniform(0, 1)) for n in names}} for i in range(8)}
    scores = [SimpleNamespace(step=i, value=float(rng.uniform(0.7, 0.9))) for i in range(8)]

    g = draw(charts.trials(scores, trial_params, "accuracy"))

    assert [t["points"] for t in g["traces"]] == [8] * 6  # every trial in every panel
    assert {t["text"] for t in g["titles"]} >= set(names)
    assert_nothing_clipped(g)


def test_segment_chart_shows_lone_points_and_breaks_at_gaps(draw: Callable[[str], dict[str, Any]]) -> None:
    nan = float("nan")
    # hourly reports for 12 h, none for two days, then 12 h more; north is measured alone at
    # hour 5 (its neighbours had too few labels) and dropped to 0.46 in the last report
    hours = [*range(12), *range(60, 72)]
    index = pd.DatetimeIndex([T0 + timedelta(hours=h) for h in hours], name="time")
    south = [0.85 - 0.001 * i for i in range(len(hours))]
    north = [nan] * len(hours)
    north[5] = 0.81
    north[-1] = 0.46
    frame = pd.DataFrame({"segment:south": south, "segment:north": north}, index=index)

    g = draw(charts.segment_lines(frame, ["south", "north"], [event("promoted", 30)], "accuracy"))

    south_trace, north_trace = g["traces"][0], g["traces"][1]
    assert north_trace["points"] == 2  # both lone values are visible
    assert south_trace["points"] == len(hours)
    assert south_trace["lines"] == 2  # the line stops before the two days without reports
    assert_nothing_clipped(g)


def test_performance_chart(draw: Callable[[str], dict[str, Any]]) -> None:
    frame = series(24, performance=[0.85 - 0.01 * i for i in range(24)],
                   estimated_performance=[0.84 - 0.008 * i for i in range(24)])
    g = draw(charts.performance_lines(frame, [event("trigger_fired", 20)], "accuracy", 0.86, 0.05))
    assert g["traces"][0]["points"] == 24
    assert_nothing_clipped(g)


def test_drift_charts(draw: Callable[[str], dict[str, Any]]) -> None:
    frame = series(24, drift_share=[i / 24 for i in range(24)], prediction_drift=[0.01 * i for i in range(24)],
                   **{"drift:age": [0.02 * i for i in range(24)], "drift:plan": [0.01] * 24})
    lines = draw(charts.drift_lines(frame, [event("trigger_fired", 12)], 0.5))
    assert lines["traces"][0]["points"] == 24
    assert_nothing_clipped(lines)
    heat = draw(charts.drift_heatmap(frame, ["age", "plan"], 0.2))
    assert heat["heatmap"] == 1
    assert_nothing_clipped(heat)


def test_prediction_distribution(draw: Callable[[str], dict[str, Any]]) -> None:
    dist = pd.DataFrame({"bucket": [T0 + timedelta(hours=i) for i in range(12)], "p10": [0.1] * 12,
                         "p50": [0.4] * 12, "p90": [0.8] * 12, "share:1": [0.3] * 12, "share:0": [0.7] * 12})
    g = draw(charts.prediction_distribution(dist, [event("promoted", 6)]))
    assert sum(t["lines"] for t in g["traces"]) >= 4
    g["marks"] = [t for t in g["texts"] if t["cls"] == "legend"]
    assert_nothing_clipped(g)


def test_bar_charts(draw: Callable[[str], dict[str, Any]]) -> None:
    versions = [SimpleNamespace(version=i, metrics={"accuracy": 0.8 + i / 100}, status=s)
                for i, s in enumerate(["registered", "rejected", "registered", "awaiting_approval"], start=1)]
    g = draw(charts.version_metrics(versions, "accuracy"))
    assert g["bars"] == 4
    assert_nothing_clipped(g)
    g = draw(charts.importance([{"feature": f"feature_{i}", "importance": 0.1 * i, "std": 0.01} for i in range(1, 9)]))
    assert g["bars"] == 8
    assert_nothing_clipped(g)
    g = draw(charts.profile_stages({s: {"wall_s": 1.0, "cpu_s": 0.5} for s in ("load", "validate", "tune", "fit")}))
    assert g["bars"] == 8
    assert_nothing_clipped(g)
    rows = [{"time": (T0 + timedelta(days=i)).isoformat(), "cost": 0.01, "outcome": o, "label": f"v{i}",
             "value": 12.5 if o == "promoted" else None}
            for i, o in enumerate(["initial", "promoted", "waiting", "rejected", "promoted"])]
    g = draw(charts.cost_over_time(rows, "USD"))
    assert g["bars"] == 5 and sum(t["points"] for t in g["traces"]) == 2  # a star per measured promotion
    assert_nothing_clipped(g)
