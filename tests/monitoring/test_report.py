from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from modelpilot.errors import ConfigError, DataError
from modelpilot.monitoring import PSI, build_reference, drift_report


def frames(rng: np.random.Generator, n: int = 4000) -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)})
    ref["c"] = rng.choice(["a", "b", "c"], n)
    cur = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)})
    cur["x0"] += 1.0
    cur["c"] = rng.choice(["a", "b", "c"], n, p=[0.6, 0.2, 0.2])
    return ref, cur


def test_share_drifted_and_json(rng) -> None:  # type: ignore[no-untyped-def]
    ref, cur = frames(rng)
    report = drift_report(build_reference(ref), cur)
    assert report["method"] == "auto"
    assert report["drifted_columns"] == ["x0", "c"]
    assert report["n_columns"] == 5 and report["n_drifted"] == 2
    assert report["share_drifted"] == pytest.approx(0.4)
    assert report["columns"]["x1"]["drifted"] is False
    assert report["columns"]["c"]["type"] == "categorical"
    assert orjson.loads(orjson.dumps(report)) == report


def test_features_method_and_threshold(rng) -> None:  # type: ignore[no-untyped-def]
    ref, cur = frames(rng)
    profile = build_reference(ref)
    report = drift_report(profile, cur, ["x0", "x1"], method="psi", threshold=5.0)
    assert list(report["columns"]) == ["x0", "x1"] and report["n_drifted"] == 0
    assert report["columns"]["x0"]["threshold"] == 5.0
    assert drift_report(profile, cur, method=PSI())["method"] == "psi"
    with pytest.raises(ConfigError, match="unknown drift method"):
        drift_report(profile, cur, method="nope")


def test_prediction_drift_of_scores_and_labels(rng) -> None:  # type: ignore[no-untyped-def]
    ref, cur = frames(rng)
    ref_scores = rng.beta(2, 5, len(ref))
    profile = build_reference(ref, scores=ref_scores, predictions=ref_scores > 0.5)
    cur_scores = rng.beta(5, 2, len(cur))  # the model now scores most rows high
    report = drift_report(profile, cur, scores=cur_scores, predictions=cur_scores > 0.5)
    assert report["prediction_drift"]["score"]["drifted"] is True
    assert report["prediction_drift"]["label"]["drifted"] is True
    same = rng.beta(2, 5, len(cur))
    calm = drift_report(profile, cur, scores=same, predictions=same > 0.5)
    assert calm["prediction_drift"]["score"]["drifted"] is False
    assert calm["prediction_drift"]["label"]["drifted"] is False
    assert drift_report(profile, cur)["prediction_drift"] == {"score": None, "label": None}
    with pytest.raises(DataError, match="scores has 3 rows but the current frame has"):
        drift_report(profile, cur, scores=[0.1, 0.2, 0.3])


def test_missing_fractions_reported(rng) -> None:  # type: ignore[no-untyped-def]
    ref, cur = frames(rng)
    cur.loc[: len(cur) // 2, "x1"] = np.nan
    report = drift_report(build_reference(ref), cur)
    assert report["columns"]["x1"]["missing_current"] == pytest.approx(0.5, abs=0.01)
    assert report["columns"]["x1"]["missing_reference"] == 0.0


def test_report_does_not_mutate_inputs(rng) -> None:  # type: ignore[no-untyped-def]
    ref, cur = frames(rng)
    profile = build_reference(ref)
    profile_bytes, cur_copy = orjson.dumps(profile), cur.copy(deep=True)
    drift_report(profile, cur)
    assert orjson.dumps(profile) == profile_bytes
    pd.testing.assert_frame_equal(cur, cur_copy)
