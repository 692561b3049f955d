"""A retrain that upsamples a weak segment profiles the rows as they came, not the copies.

Upsampling draws the rows of a badly performing segment several times so the model learns
it; profiled as is, that segment's share in the reference would be inflated (north at 2-3x
its live share) and the next window would report the segment column as drifted although
the traffic did not change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from controller_helpers import scored, stream, window_of

from modelpilot.artifacts import get_json
from modelpilot.controller.window import FrameWindow


def _after(rows: pd.DataFrame, minutes: float = 1.0) -> Any:
    return rows["ts"].max().to_pydatetime() + timedelta(minutes=minutes)


def test_the_reference_profile_is_built_without_the_upsampled_copies(make_pilot: Any) -> None:
    pilot = make_pilot(triggers={"schedule": "* * * * *", "feature_drift": {"enabled": False}},
                       retraining={"change_point": False, "upsample_factor": 4.0, "history_fraction": 0.0,
                                   "include_source": False, "recent_rows": 800},
                       gates={"test": "none", "min_improvement": 0.0, "max_segment_regression": 1.0})
    rows = stream(1600, 0, seed=8)
    ctl = pilot.controller(window=window_of(pilot, rows.iloc[:800]), inline=True)
    ctl.tick(now=_after(rows.iloc[:800]))  # the schedule starts counting
    # the champion does badly in one region only: its labels are flipped for half its rows
    region = rows["region"].iloc[0]
    part = rows.iloc[:800].copy()
    north = np.flatnonzero((part["region"] == region).to_numpy())
    part.loc[part.index[north[::2]], "churned"] = 1 - part.loc[part.index[north[::2]], "churned"]
    ctl.window = window_of(pilot, part)
    result = ctl.tick(now=_after(part, minutes=3))
    assert result.retrain is not None
    info = result.retrain["info"]
    assert info["upsampled"] and info["resampled_rows"] == sum(info["upsampled"].values()) > 100

    version = pilot.store.get_version("churn", result.retrain["version"])
    profile = get_json(pilot.artifacts, version.reference_key)
    col = profile["columns"]["region"]
    share = dict(zip(col["categories"], col["proportions"], strict=True))[str(region)]
    live_share = float((part["region"] == region).mean())
    assert abs(share - live_share) < 0.05, (share, live_share)  # not 2-3x the live share

    # the next window of unchanged traffic, judged against the new version's profile
    pilot.store.set_alias("churn", "champion", version.version, reason="test: judge the next window with it")
    nxt = rows.iloc[800:]
    window = FrameWindow()
    window.append(scored(pilot, nxt, version=version.version))
    ctl.window = window
    after = ctl.tick(now=_after(nxt))
    assert after.summary is not None and "region" not in after.summary["drifted_features"], after.summary
