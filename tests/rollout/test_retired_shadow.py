"""After a promotion the retired champion scores a sample of live traffic in shadow, and the
controller measures both models on the same labelled rows: the value side of ROI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rollout_helpers import MODEL, REnv, send, serve, traffic

from modelpilot.controller.counterfactual import measure, roi_report
from modelpilot.controller.logwindow import LogWindow
from modelpilot.rollout import retired as rr
from modelpilot.rollout.replace import promote
from modelpilot.rollout.router import retired_mask
from modelpilot.serving.logreader import PredictionLogReader


def test_the_retired_champion_is_measured_on_the_same_labelled_rows(renv: REnv) -> None:
    cfg = renv.configure(costs={"value_per_correct_prediction": 1.0, "cost_per_error": 1.0,
                                "counterfactual": {"fraction": 0.4, "period": "7d"}})
    # a worse model (always the majority class) replaces a good one: the promotion loses money
    promote(renv.store, MODEL, renv.worse, champion=renv.champion, reason="test")
    rows = traffic(300, seed=5)
    with serve(renv) as server:
        server.wait_refreshed()
        answers = send(server, rows, batch=10)
        server.flush()
    assert {a["model_version"] for a in answers} == {renv.worse}  # callers only see the champion

    reader = PredictionLogReader(renv.artifacts, MODEL)
    shadow = reader.predictions(role="retired")
    sampled = retired_mask(rows["id"].tolist(), renv.worse, 0.4)
    assert set(shadow["request_id"]) == set(rows["id"][sampled]) and 60 < sampled.sum() < 180
    assert set(shadow["model_version"]) == {renv.champion}

    [record] = measure(renv.store, LogWindow(renv.artifacts, MODEL), MODEL, renv.worse, "classification",
                       datetime.now(UTC))
    d = record["measure"]
    # recomputed by hand from the log: both models' answers to the sampled requests, and the labels
    primary = reader.predictions().set_index("request_id")["prediction"]
    truth = rows.set_index("id")["churned"].astype(str)
    ids = shadow["request_id"].to_numpy()
    new_right = (primary.loc[ids].to_numpy() == truth.loc[ids].to_numpy()).mean()
    old_right = (shadow["prediction"].to_numpy() == truth.loc[ids].to_numpy()).mean()
    assert d["n"] == len(ids) and d["measure"] == "accuracy"
    assert d["new"] == pytest.approx(new_right) and d["old"] == pytest.approx(old_right)
    assert d["difference"] == pytest.approx(new_right - old_right) and d["difference"] < 0
    assert record["served"] == 300

    report = roi_report(cfg, renv.store, MODEL)
    assert report["retrains"] == []  # no retrain run here: nothing costed, the record is kept
    assert rr.get(renv.store, MODEL, renv.worse)["measure"] == d

    # the next promotion freezes this record at its last measurement
    promote(renv.store, MODEL, renv.healthy, champion=renv.worse, reason="test")
    frozen = measure(renv.store, LogWindow(renv.artifacts, MODEL), MODEL, renv.healthy, "classification",
                     datetime.now(UTC))
    assert [r["champion"] for r in frozen if r["frozen_at"]] == [renv.worse]
    assert not rr.shadowing(rr.get(renv.store, MODEL, renv.worse), renv.worse, 7 * 86400, datetime.now(UTC))


def test_no_shadow_without_a_promotion_or_with_fraction_zero(renv: REnv) -> None:
    renv.configure(costs={"counterfactual": {"fraction": 0.0}})
    promote(renv.store, MODEL, renv.healthy, champion=renv.champion, reason="test")
    with serve(renv) as server:
        server.wait_refreshed()
        send(server, traffic(50, seed=6), batch=10, labels=False)
        server.flush()
    assert PredictionLogReader(renv.artifacts, MODEL).predictions(role="retired").empty


def test_a_tenure_is_measured_from_its_promotion_on_the_promoting_clock(renv: REnv) -> None:
    """A champion promoted again later (here on a replay's clock, in the past) is measured on
    its new tenure only: what it served and was paired on before the promotion is not counted."""
    import numpy as np
    import pandas as pd

    from modelpilot.controller.window import FrameWindow

    start = pd.Timestamp("2024-05-01", tz="UTC")
    window = FrameWindow()

    def batch(b: int, version: int, retired: int | None) -> pd.DataFrame:
        ids = np.arange(b * 100, (b + 1) * 100)
        rows = pd.DataFrame({"request_id": ids.astype(str), "ts": start + pd.to_timedelta(ids, unit="s"),
                             "model_version": version, "prediction": "1", "role": "primary",
                             "label": pd.Series(["1"] * 100, dtype=object)})
        if retired is None:
            return rows
        side = rows.iloc[::4].assign(role="retired", model_version=retired, prediction="0")
        return pd.concat([rows, side], ignore_index=True)

    for b in range(5):  # an earlier tenure of `worse`, with `champion` in shadow
        window.append(batch(b, renv.worse, renv.champion))
    for b in range(5, 10):
        window.append(batch(b, renv.champion, None))
    promote(renv.store, MODEL, renv.worse, champion=renv.champion, reason="test")  # the wall clock: now
    later = rr.get(renv.store, MODEL, renv.worse)
    assert datetime.fromisoformat(later["since"]) > datetime(2026, 1, 1, tzinfo=UTC)
    renv.store.set_alias(MODEL, "champion", renv.champion)
    tenure = (start + pd.Timedelta(seconds=1000)).to_pydatetime()
    promote(renv.store, MODEL, renv.worse, champion=renv.champion, reason="test", now=tenure)
    assert rr.get(renv.store, MODEL, renv.worse)["since"] == tenure.isoformat()
    for b in range(10, 13):
        window.append(batch(b, renv.worse, renv.champion))
    [record] = measure(renv.store, window, MODEL, renv.worse, "classification", tenure)
    assert record["served"] == 300  # not the 500 of its first tenure
    assert record["measure"]["n"] == 75 and record["measure"]["difference"] == pytest.approx(1.0)


def test_a_large_request_answered_by_the_lane_process_feeds_both_shadows(renv: REnv) -> None:
    """The lane process logs a large request itself; the retired sample and a rollout's
    shadow still receive their rows (isolation.py)."""
    serving = {"refresh_interval": 0.1, "log_flush_interval": 0.2, "offload_bytes": 4096, "lane_log_rows": 300}
    renv.configure(serving=serving, costs={"counterfactual": {"fraction": 0.4, "period": "7d"}})
    promote(renv.store, MODEL, renv.worse, champion=renv.champion, reason="test")
    rows = traffic(300, seed=7)  # one request of ~25 KB: over offload_bytes, so the lane answers
    with serve(renv) as server:
        server.wait_refreshed()
        [answer] = send(server, rows, batch=300, labels=False)
        server.flush()
        assert server.app.state.lane.completed == 1
    reader = PredictionLogReader(renv.artifacts, MODEL)
    primary = reader.predictions(role="primary")
    assert sorted(primary["request_id"]) == sorted(rows["id"]) == sorted(answer["ids"])
    sampled = retired_mask(rows["id"].tolist(), renv.worse, 0.4)
    shadow = reader.predictions(role="retired")
    assert sorted(shadow["request_id"]) == sorted(rows["id"][sampled]) and 60 < sampled.sum() < 180
    assert set(shadow["model_version"]) == {renv.champion}
    features = shadow.set_index("request_id")[["f_age", "f_plan"]].sort_index()
    sent = rows.set_index("id").loc[features.index]
    assert features["f_age"].tolist() == sent["age"].tolist()
    assert features["f_plan"].tolist() == sent["plan"].tolist()

    # a shadow rollout needs every row's columns: they come back from the lane
    renv.configure({"strategy": "shadow"}, serving=serving, costs={"counterfactual": {"fraction": 0.0}})
    renv.champion = renv.worse
    renv.start("shadow", renv.healthy)
    more = traffic(300, seed=8)
    with serve(renv) as server:
        server.wait_refreshed()
        send(server, more, batch=300, labels=False)
        server.flush()
        assert server.app.state.lane.completed == 1
    logged = reader.predictions(role=None)
    mine = logged[logged["request_id"].isin(more["id"])]
    assert sorted(mine[mine["role"] == "primary"]["request_id"]) == sorted(more["id"])
    assert sorted(mine[mine["role"] == "shadow"]["request_id"]) == sorted(more["id"])
    assert set(mine[mine["role"] == "shadow"]["model_version"]) == {renv.healthy}
