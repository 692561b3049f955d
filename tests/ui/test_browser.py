"""The dashboard in a real browser: headless Chromium driven by Playwright.

Every page is opened over the demo's store served by the real app (``create_app`` mounts
the dashboard at /ui); each test checks the page's key content, that every figure was
drawn by Plotly (loaded from the app, not a CDN) and that the console stayed clean, then
saves a screenshot under ``tests/screenshots/`` (ignored by git).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

# the browser fixture is in conftest.py: one Playwright per session, shared by every browser test
SHOTS = Path(__file__).resolve().parents[1] / "screenshots"


@pytest.fixture(scope="session")
def base_url(demo_env: Any) -> Iterator[str]:
    from modelpilot.serving.app import create_app
    from modelpilot.serving.server import start_in_thread

    app = create_app(demo_env.pilot.cfg, demo_env.store, demo_env.pilot.artifacts)
    server, url = start_in_thread(app)
    try:
        yield url
    finally:
        server.stop()


class Page:
    """A page of a fresh browser context that records console errors and failed requests."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="Europe/Paris")
        self.page = self.context.new_page()
        self.base_url = base_url
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed {r.url}"))

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base_url + path, wait_until="load")
        assert response is not None and response.status == 200, path
        return self.page

    def charts_rendered(self) -> int:
        """Wait until Plotly drew every figure of the page; returns how many there are."""
        expected = self.page.locator("div.plotly-graph-div").count()
        self.page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .plot-container').length >= {expected}", timeout=15_000)
        assert self.page.locator(".js-plotly-plot").count() == expected
        return int(expected)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture
def ui(browser: Any, base_url: str) -> Iterator[Page]:
    p = Page(browser, base_url)
    yield p
    p.close()


def test_overview(ui: Page) -> None:
    page = ui.open("/ui/")
    assert page.locator("table.models").get_by_text("churn").count() >= 1
    assert page.get_by_role("heading", name="Latest events").is_visible()
    # dates are converted to the viewer's zone: the UTC suffix of the server's text is gone
    first = page.locator("time").first
    assert "UTC" not in first.inner_text() and "UTC" in (first.get_attribute("title") or "")
    assert page.locator(".tz").first.inner_text() == "Europe/Paris"
    ui.shot("overview")


def test_model_page(ui: Page, demo_env: Any) -> None:
    page = ui.open("/ui/models/churn")
    assert ui.charts_rendered() == 1
    for v in demo_env.store.list_versions("churn"):
        assert page.locator(f"tr#v{v.version}").count() == 1
    assert page.locator("td.lineage").first.inner_text().startswith("data")
    ui.shot("model")


def test_monitoring_page(ui: Page) -> None:
    page = ui.open("/ui/models/churn/monitoring")
    assert ui.charts_rendered() == 5
    for title in ("Feature drift over time", "Prediction distribution over time", "Performance over time",
                  "Performance per segment"):
        assert page.locator(".gtitle", has_text=title).count() == 1, title
    assert page.locator(".heatmaplayer").count() == 1
    ui.shot("monitoring")


def test_run_page(ui: Page) -> None:
    page = ui.open("/ui/runs/1")
    assert ui.charts_rendered() == 4
    assert page.get_by_role("heading", name="Data validation").is_visible()
    assert page.locator("td", has_text="class_balance").count() == 1
    ui.shot("run")


def test_events_page_filters(ui: Page) -> None:
    page = ui.open("/ui/events")
    assert page.locator("tr.ev").count() > 10
    page.select_option("select[name=kind]", "promoted")
    page.click("#event-filters button[type=submit]")
    page.wait_for_url("**kind=promoted**")
    kinds = page.locator("tr.ev span.kind").all_inner_texts()
    assert kinds and set(kinds) == {"promoted"}
    page.locator("tr.ev details summary").first.click()
    assert "to_version" in page.locator("tr.ev details").first.inner_text()
    ui.shot("events")


def test_cost_page(ui: Page) -> None:
    page = ui.open("/ui/models/churn/cost")
    assert ui.charts_rendered() == 1
    assert page.get_by_text("Return on retraining").is_visible()
    ui.shot("cost")


def test_backtests_empty_state(ui: Page) -> None:
    page = ui.open("/ui/backtests")
    assert page.get_by_text("modelpilot backtest --report").is_visible()
    ui.shot("backtests")


def test_without_a_token_no_buttons_and_the_endpoint_refuses(ui: Page, demo_env: Any) -> None:
    version = demo_env.awaiting_version()
    champion = demo_env.store.get_alias("churn", "champion")
    page = ui.open("/ui/models/churn")
    row = page.locator(f"tr#v{version}")
    assert "awaiting review" in row.inner_text()
    assert row.get_by_role("button", name="Approve").count() == 0
    r = page.request.post(f"{ui.base_url}/ui/models/churn/versions/{version}/approve")
    assert r.status == 403  # no form token
    assert demo_env.store.get_alias("churn", "champion") == champion
    ui.shot("model-anonymous")
    ui.errors.clear()  # the refused POST is not a page error


def test_operator_logs_in_and_approves(ui: Page, demo_env: Any) -> None:
    version = demo_env.awaiting_version()
    page = ui.open("/ui/models/churn")
    page.get_by_role("link", name="log in").first.click()
    page.fill("input[name=token]", demo_env.operator)
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/ui/models/churn")
    assert "ops (operator)" in page.locator("header").inner_text()
    cookie = next(c for c in ui.context.cookies() if c["name"] == "modelpilot_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != demo_env.operator
    assert page.evaluate("document.cookie") == ""  # invisible to scripts
    row = page.locator(f"tr#v{version}")
    row.locator("input[name=comment]").fill("checked by hand")
    row.get_by_role("button", name="Approve").click()
    page.wait_for_url("**done=approved**")
    assert page.locator(".alias-champion").inner_text() == f"v{version}"
    assert page.locator(f"tr#v{version} .alias").inner_text() == "champion"
    assert demo_env.store.get_alias("churn", "champion") == version
    ui.shot("model-approved")


def test_plotly_comes_from_the_app(base_url: str) -> None:
    r = httpx.get(f"{base_url}/ui/static/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000


FIGURES_FIT = """() => Array.from(document.querySelectorAll('.figure')).map(f => {
  const box = f.getBoundingClientRect();
  const svg = f.querySelector('svg.main-svg');
  const s = svg ? svg.getBoundingClientRect() : null;
  const title = f.querySelector('.gtitle');
  return {title: title ? title.textContent : '', fits: s !== null && s.left >= box.left - 1 &&
          s.right <= box.right + 1 && s.top >= box.top - 1 && s.bottom <= box.bottom + 1,
          svg: s && [s.left, s.right], box: [box.left, box.right]};
})"""


@pytest.mark.parametrize("path", ["/ui/runs/1", "/ui/runs/2", "/ui/models/churn/monitoring", "/ui/models/churn/cost"])
def test_every_figure_fits_its_frame(ui: Page, path: str) -> None:
    # figures in the two-column grid were drawn at the full row's width and clipped
    page = ui.open(path)
    ui.charts_rendered()
    page.wait_for_timeout(500)  # the fitting after layout
    figures = page.evaluate(FIGURES_FIT)
    assert figures
    assert all(f["fits"] for f in figures), [f for f in figures if not f["fits"]]
