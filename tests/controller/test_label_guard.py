"""Forged labels do not get a model promoted; a genuine concept drift still does.

The poisoned stream is what an anonymous client can send when predict and feedback are
open: 1,000 self-made predictions in a burst, each labelled with the opposite of what the
champion answered. The drift is the churn generator's own: the effect of support calls
and discounts flips in one region, then everywhere.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from controller_helpers import TRAFFIC_START, kinds, scored, stream

from modelpilot.controller.window import FrameWindow
from modelpilot.data.synth import customers
from modelpilot.serving import create_app, start_in_thread


def _after(rows: pd.DataFrame) -> Any:
    return pd.Timestamp(rows["ts"].max()).to_pydatetime() + timedelta(minutes=1)


def _poisoned(pilot: Any) -> pd.DataFrame:
    calm = scored(pilot, stream(400, 0, seed=3))
    forged = customers(1000, seed=77, start=TRAFFIC_START)
    forged.insert(0, "customer_id", [f"X{i:05d}" for i in range(len(forged))])
    # a burst: 1,000 requests within 20 seconds after the calm traffic
    forged["ts"] = pd.Timestamp(calm["ts"].max()) + pd.to_timedelta(np.arange(1000) * 0.02 + 60, unit="s")
    log = scored(pilot, forged)
    log["label"] = np.where(log["prediction"] == "1", "0", "1")  # label = 1 - prediction
    return pd.concat([calm, log], ignore_index=True)


def test_a_burst_of_flipped_labels_is_not_promoted(make_pilot: Any) -> None:
    pilot = make_pilot()
    rows = _poisoned(pilot)
    window = FrameWindow()
    window.append(rows)

    result = pilot.controller(window=window, inline=True).tick(now=_after(rows))

    assert result.retrain is not None, "the flipped labels look like a performance drop: a retrain runs"
    assert result.promoted is None and pilot.store.get_alias("churn", "champion") == 1
    assert kinds(pilot, "gate_passed", "label_anomaly", "gate_rejected", "promoted") == [
        "label_anomaly", "gate_rejected",
    ]
    (anomaly,) = pilot.store.events(model="churn", kind="label_anomaly")
    assert "labels look forged" in anomaly.reason and "not promoted" in anomaly.reason
    assert anomaly.numbers["run_disagreement"] == 1.0 and anomaly.numbers["z"] >= 6
    rejected = pilot.store.events(model="churn", kind="gate_rejected")[0]
    assert "labels look forged" in rejected.reason
    assert pilot.store.get_version("churn", result.retrain["version"]).status == "rejected"


def test_a_concept_drift_in_one_region_then_everywhere_still_promotes(make_pilot: Any) -> None:
    pilot = make_pilot()
    calm = stream(300, 0, seed=5)
    start = calm["ts"].max().to_pydatetime()
    north = customers(500, seed=105, start=start, drift={"at": 0.0, "segment": "north", "strength": 1.0})
    everywhere = customers(900, seed=205, start=north["ts"].max().to_pydatetime(),
                           drift={"at": 0.0, "strength": 1.0})
    drifted = pd.concat([north, everywhere], ignore_index=True)
    drifted.insert(0, "customer_id", [f"D{i:06d}" for i in range(len(drifted))])
    window = FrameWindow()
    window.append(pd.concat([scored(pilot, calm), scored(pilot, drifted)], ignore_index=True))

    result = pilot.controller(window=window, inline=True).tick(now=_after(drifted))

    assert result.promoted == 2 and pilot.store.get_alias("churn", "champion") == 2
    assert kinds(pilot, "label_anomaly") == []
    assert result.gate is not None and "label_guard" not in result.gate["numbers"]


@pytest.mark.timeout(900)  # a real server, then a real retrain: slow on a loaded machine
def test_poisoned_feedback_sent_over_http_is_not_promoted(make_pilot: Any) -> None:
    """The finding as it was made: an anonymous client, a real server, the real prediction log."""
    pilot = make_pilot()
    names = [f["name"] for f in pilot.store.get_version("churn", 1).signature]
    app = create_app(pilot.cfg, pilot.store, pilot.artifacts)
    server, base = start_in_thread(app)
    try:
        with httpx.Client(base_url=f"{base}/v1/models/churn", timeout=60) as client:
            for part, (frame, flip) in enumerate([(customers(300, seed=11), False), (customers(1000, seed=77), True)]):
                X = frame[names].astype(object).where(frame[names].notna(), None)
                for start in range(0, len(frame), 100):
                    ids = [f"p{part}-{i}" for i in range(start, min(start + 100, len(frame)))]
                    r = client.post("/predict", json={"instances": X.iloc[start:start + 100].to_dict("records"),
                                                      "ids": ids})
                    assert r.status_code == 200, r.text
                    truth = frame["churned"].iloc[start:start + 100].tolist()
                    labels = [1 - int(p) for p in r.json()["predictions"]] if flip else truth
                    assert client.post("/feedback", json={"ids": ids, "labels": labels}).status_code == 200
    finally:
        server.stop()  # the log writer drains: every prediction and label is on disk

    result = pilot.controller(inline=True).tick()

    assert result.retrain is not None and result.promoted is None
    assert pilot.store.get_alias("churn", "champion") == 1
    (anomaly,) = pilot.store.events(model="churn", kind="label_anomaly")
    assert anomaly.numbers["run_disagreement"] > 0.99 and anomaly.numbers["run_rows"] >= 900
