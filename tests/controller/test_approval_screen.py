"""The approval screen shows the gate's same-holdout comparison where Approve/Reject are, and
the Cost page lists the parked retrain as waiting."""

from __future__ import annotations

import re
import warnings
from datetime import timedelta
from typing import Any

from controller_helpers import stream, window_of

from modelpilot.ui import create_ui_app

with warnings.catch_warnings():  # starlette deprecates httpx in its TestClient; it still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_parked_candidate_shows_the_gates_comparison_and_waits(make_pilot: Any) -> None:
    pilot = make_pilot(gates={"test": "bootstrap", "n_bootstrap": 300, "human_approval": True})
    rows = stream(400, 1000)
    ctl = pilot.controller(window=window_of(pilot, rows), inline=True)
    ctl.tick(now=rows["ts"].max().to_pydatetime() + timedelta(minutes=1))
    [parked] = [v for v in pilot.store.list_versions("churn") if v.status == "awaiting_approval"]
    passed = pilot.store.events(model="churn", kind="gate_passed")[0].numbers

    with TestClient(create_ui_app(pilot.cfg, pilot.store, pilot.artifacts)) as client:
        page = client.get("/ui/models/churn").text
        cost = client.get("/ui/models/churn/cost").text

    block = page[page.index(f'id="gate-v{parked.version}"'):]
    block = block[: block.index("</div>")]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", block))
    # the numbers the gate decided on: same rows, both models, interval, p-value, segments
    assert f"same {passed['holdout_rows']:,} holdout rows" in text
    assert f"v{parked.version} {passed['challenger']:,.4f} vs champion v1 {passed['champion']:,.4f}" in text
    assert f"improvement {passed['delta']:+.4f}, 90% interval [{passed['ci_low']:+.4f}, {passed['ci_high']:+.4f}]" in text
    assert passed["test"].startswith("bootstrap")  # superiority, or non-inferiority after a located change
    assert f"{passed['test']} p = {passed['p_value']:.3g}" in text
    assert passed["segments"] and all(s["detail"].split(" (")[0] in text for s in passed["segments"])
    # not each model's own validation split (those numbers differ from the gate's)
    assert f"{parked.metrics['accuracy']:,.4f}" not in text

    runs = re.findall(r"<tr><td><a href=\"/ui/runs/\d+\">run \d+</a></td>.*?</tr>", cost, flags=re.S)
    retrain = [r for r in runs if f">v{parked.version}<" in r]
    assert retrain and all("waiting" in r and "rejected" not in r for r in retrain)
    # status --json reads the same rows
    [model] = pilot.status()["models"]
    assert [r["outcome"] for r in model["roi"]["retrains"]] == ["waiting"]
