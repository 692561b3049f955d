"""Each page rendered by its handler over a store filled by a real run of the loop."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from modelpilot.ui.queries import bucket_width, monitoring_series

FIGURE = 'class="plotly-graph-div"'


def figures(html: str) -> int:
    return html.count(FIGURE)


def test_overview_lists_the_model_with_champion_health_and_events(ui_client, demo_env):
    champion = demo_env.store.get_alias("churn", "champion")
    r = ui_client.get("/ui/")
    assert r.status_code == 200
    assert "churn" in r.text and f"v{champion}" in r.text
    assert "Latest events" in r.text and "trigger_fired" in r.text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT', r.text)  # ISO UTC for the viewer's zone
    assert "/ui/static/ui.js" in r.text


def test_plotly_js_is_served_from_the_installed_package(ui_client):
    r = ui_client.get("/ui/static/plotly.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert len(r.content) > 1_000_000 and b"plotly" in r.content[:2000].lower()
    page = ui_client.get("/ui/models/churn/monitoring").text
    assert "cdn." not in page and "https://" not in page.split("<main>")[0]


def test_model_page_shows_versions_lineage_aliases_and_chart(ui_client, demo_env):
    r = ui_client.get("/ui/models/churn")
    assert r.status_code == 200
    versions = demo_env.store.list_versions("churn")
    for v in versions:
        assert f'id="v{v.version}"' in r.text
    assert "rejected" in r.text and "accuracy" in r.text and "roc_auc" in r.text
    assert "config <code>" in r.text and "parent" in r.text and "/ui/runs/1" in r.text
    assert figures(r.text) == 1
    assert "Champion history" in r.text and "first version to pass the gate" in r.text


def test_run_page_shows_params_curves_trials_validation_segments_importance_profile_cost(ui_client):
    r = ui_client.get("/ui/runs/1")
    assert r.status_code == 200
    text = r.text
    for title in ("Learning curve", "HPO trials", "Permutation feature importance", "Profile per stage"):
        assert title in text
    assert figures(text) == 4
    assert "class_balance" in text and "duplicates" in text  # the data validation report
    assert "region" in text and "north" in text  # the segment table
    assert "compute" in text and "storage" in text and "best_params" in text


def test_retrain_run_without_tuning_says_how_to_enable_it(ui_client, demo_env):
    retrain = demo_env.store.list_runs(model="churn", kind="retrain")[0]
    r = ui_client.get(f"/ui/runs/{retrain.id}")
    assert r.status_code == 200
    assert "No tuning in this run" in r.text and "retraining.tune" in r.text


def test_monitoring_page_has_heatmap_predictions_performance_segments_and_markers(ui_client, demo_env):
    r = ui_client.get("/ui/models/churn/monitoring")
    assert r.status_code == 200
    text = r.text
    for title in ("Feature drift over time", "Drift share", "Prediction distribution over time",
                  "Performance over time", "Performance per segment"):
        assert title in text, title
    assert figures(text) == 5
    assert "promoted" in text and "trigger_fired" in text  # events marked on the time axes
    assert "region=north" in text


def test_monitoring_range_filter_and_unknown_model(ui_client):
    assert ui_client.get("/ui/models/churn/monitoring?range=24h").status_code == 200
    r = ui_client.get("/ui/models/nope/monitoring")
    assert r.status_code == 404 and "no model named &#39;nope&#39;" in r.text
    assert ui_client.get("/ui/monitoring", follow_redirects=False).headers["location"] == "/ui/models/churn/monitoring"


def test_events_page_filters_by_model_kind_and_time(ui_client, demo_env):
    r = ui_client.get("/ui/events?kind=promoted")
    assert r.status_code == 200
    kinds = re.findall(r'<span class="kind ([a-z_]+)">', r.text)
    assert kinds and set(kinds) == {"promoted"}
    first = demo_env.store.events(model="churn", limit=10_000)[-1]
    until = (first.time + timedelta(microseconds=1)).isoformat()
    r = ui_client.get("/ui/events", params={"model": "churn", "until": until})
    assert len(re.findall(r'<tr class="ev ', r.text)) == 1
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = ui_client.get("/ui/events", params={"since": future})
    assert "No event matches these filters" in r.text


def test_cost_page_shows_spend_recovery_and_roi(ui_client, demo_env):
    r = ui_client.get("/ui/models/churn/cost")
    assert r.status_code == 200
    assert "Return on retraining" in r.text and "ROI" in r.text and "net value" in r.text
    assert figures(r.text) == 1
    retrains = demo_env.store.list_runs(model="churn", kind="retrain")
    assert f"{len(retrains)} retrain(s)" in r.text


def test_backtests_lists_reports_from_the_folder_and_the_artifact_store(ui_client, demo_env):
    r = ui_client.get("/ui/backtests")
    assert "modelpilot backtest --report" in r.text
    folder = demo_env.folder / "backtests"
    folder.mkdir(exist_ok=True)
    (folder / "weekly.html").write_text("<html><body><h1>weekly policy</h1></body></html>")
    demo_env.pilot.artifacts.write_named("backtests/sudden.html", b"<html><body>sudden drift</body></html>")
    try:
        r = ui_client.get("/ui/backtests")
        assert "weekly.html" in r.text and "sudden.html" in r.text
        served = ui_client.get("/ui/backtests/file/weekly.html")
        assert "weekly policy" in served.text and "sandbox" in served.headers["content-security-policy"]
        assert "sudden drift" in ui_client.get("/ui/backtests/artifact/sudden.html").text
        assert ui_client.get("/ui/backtests/file/..%2Fpilot.yaml").status_code == 404
    finally:
        (folder / "weekly.html").unlink()
        demo_env.pilot.artifacts.delete("backtests/sudden.html")


def form_token(client, path: str) -> str:
    """The form token (CSRF) of the page at ``path``, as a browser would post it back."""
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, f"no form token on {path}"
    return match.group(1)


def log_in(client, token: str, next_: str = "/ui/") -> object:
    return client.post("/ui/login", data={"token": token, "next": next_, "csrf": form_token(client, "/ui/login")},
                       follow_redirects=False)


def test_approve_refuses_without_a_token_and_changes_nothing(ui_client, demo_env):
    version = demo_env.awaiting_version()
    champion = demo_env.store.get_alias("churn", "champion")
    ui_client.cookies.clear()
    page = ui_client.get("/ui/models/churn").text
    assert "awaiting review" in page and ">Approve</button>" not in page
    csrf = form_token(ui_client, "/ui/login")  # a valid form token, but no login
    r = ui_client.post(f"/ui/models/churn/versions/{version}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 401 and "operator token" in r.text
    assert log_in(ui_client, demo_env.viewer).status_code == 303
    try:
        csrf = form_token(ui_client, "/ui/models/churn")
        r = ui_client.post(f"/ui/models/churn/versions/{version}/reject", data={"csrf": csrf},
                           follow_redirects=False)
        assert r.status_code == 403 and "has role viewer" in r.text
        assert ">Approve</button>" not in ui_client.get("/ui/models/churn").text
    finally:
        ui_client.cookies.clear()
    assert demo_env.store.get_alias("churn", "champion") == champion
    assert demo_env.store.get_approval("churn", version).status == "pending"


def test_login_then_approve_moves_the_champion(ui_client, demo_env):
    version = demo_env.awaiting_version()
    ui_client.cookies.clear()
    r = log_in(ui_client, "mp_wrong", "/ui/models/churn")
    assert r.status_code == 401 and "unknown or revoked token" in r.text
    r = log_in(ui_client, demo_env.operator, "/ui/models/churn")
    assert r.status_code == 303 and r.headers["location"] == "/ui/models/churn"
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert demo_env.operator not in cookie  # a session id, never the token
    try:
        page = ui_client.get("/ui/models/churn").text
        assert ">Approve</button>" in page and ">Reject</button>" in page and "ops (operator)" in page
        csrf = form_token(ui_client, "/ui/models/churn")
        r = ui_client.post(f"/ui/models/churn/versions/{version}/approve",
                           data={"comment": "looks good", "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303
        assert demo_env.store.get_alias("churn", "champion") == version
        assert f'class="alias-champion">v{version}<' in ui_client.get(r.headers["location"]).text
        again = ui_client.post(f"/ui/models/churn/versions/{version}/approve", data={"csrf": csrf},
                               follow_redirects=False)
        assert again.status_code == 409 and "already approved" in again.text
    finally:
        ui_client.post("/ui/logout", data={"csrf": form_token(ui_client, "/ui/")})
        ui_client.cookies.clear()


def test_reject_with_a_bearer_token(ui_client, demo_env):
    version = demo_env.awaiting_version()
    ui_client.cookies.clear()
    r = ui_client.post(f"/ui/models/churn/versions/{version}/reject",
                       headers={"Authorization": f"Bearer {demo_env.operator}"}, follow_redirects=False)
    assert r.status_code == 303
    assert demo_env.store.get_version("churn", version).status == "rejected"


def test_login_redirect_stays_inside_the_dashboard(ui_client, demo_env):
    ui_client.cookies.clear()
    r = log_in(ui_client, demo_env.viewer, "https://evil.example/")
    assert r.headers["location"] == "/ui/"
    ui_client.cookies.clear()


# ---------------------------------------------------------------------- empty states


def test_empty_store_pages_say_what_to_do_next(make_client):
    client, _ = make_client()
    assert "modelpilot train" in client.get("/ui/").text
    assert "No events yet" in client.get("/ui/events").text
    assert "modelpilot backtest --report" in client.get("/ui/backtests").text
    assert client.get("/ui/models/churn").status_code == 404


def test_model_without_reports_or_labels(make_client):
    client, pilot = make_client()
    store = pilot.store
    run = store.create_run("churn")
    store.register_version("churn", run_id=run.id, artifact_key="k", reference_key=None,
                           signature=[{"name": "x", "type": "float"}], task="classification", classes=[0, 1],
                           metrics={"accuracy": 0.8}, lineage={})
    r = client.get("/ui/models/churn/monitoring")
    assert "No monitoring reports yet" in r.text and "modelpilot controller --once" in r.text
    now = datetime.now(UTC)
    store.add_monitoring_report("churn", 1, window_start=now - timedelta(hours=1), window_end=now,
                                n_predictions=500, n_labelled=0, details_key=None,
                                summary={"metric": "accuracy", "drift_share": 0.1, "feature_drift": {"x": 0.02},
                                         "prediction_drift": 0.01, "performance": None,
                                         "estimated_performance": 0.79, "segment_performance": {}})
    r = client.get("/ui/models/churn/monitoring")
    assert "No labels yet: send them to <code>POST /v1/models/churn/feedback</code>" in r.text
    assert "No predictions logged" in r.text
    assert figures(r.text) == 3  # heatmap, drift, estimated performance
    assert "No training runs yet" not in client.get("/ui/models/churn/cost").text
    r = client.get(f"/ui/runs/{run.id}")
    assert "No metrics logged" in r.text and "No validation report" in r.text


# ---------------------------------------------------------------------- aggregation


def test_bucket_width_caps_the_points():
    assert bucket_width(365 * 86400, 8760) == 86400
    assert bucket_width(3600, 100) is None


def test_a_year_of_hourly_reports_is_bucketed_per_day(make_client):
    client, pilot = make_client()
    store = pilot.store
    store.create_model("churn")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for h in range(0, 24 * 30 * 2, 1):  # two months hourly: enough to cross the cap
        t = start + timedelta(hours=h)
        store.add_monitoring_report("churn", 1, window_start=t, window_end=t, n_predictions=100, n_labelled=50,
                                    details_key=None,
                                    summary={"drift_share": (h % 24) / 24, "feature_drift": {"a": 0.1, "b": 0.2},
                                             "performance": 0.8, "segment_performance": {"r=n": {"value": 0.7, "n": 5}}})
    series = monitoring_series(store, "churn")
    assert series.n_reports == 1440 and series.bucket_seconds == 6 * 3600
    assert len(series.frame) == 240
    assert series.frame["n_predictions"].iloc[0] == 600  # summed per bucket
    assert series.frame["drift:b"].iloc[0] == pytest.approx(0.2)
    assert series.frame["segment:r=n"].iloc[0] == pytest.approx(0.7)
    assert figures(client.get("/ui/models/churn/monitoring").text) == 4
