"""``POST /predict?intervals=true``: conformal intervals (regression) and prediction sets
(classification) from the version's own calibration, consistent with the predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_helpers import CATEGORICAL, NUMERIC, SIGNATURE, Env, Served, instance, make_frame
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import put_json, save_model
from modelpilot.monitoring import build_reference
from modelpilot.monitoring.conformal import fit_conformal

FEATURES = NUMERIC + CATEGORICAL


def calibrated(env: Env, name: str, pipeline: Pipeline, *, alpha: float = 0.1) -> dict[str, float]:
    """Register ``pipeline`` as ``name``'s champion with a reference profile calibrated on rows
    it did not train on (as training does on its validation rows); returns the calibration."""
    valid = make_frame(400, seed=11)
    classification = hasattr(pipeline, "classes_")
    if classification:
        conf = fit_conformal(valid["churned"], proba=pipeline.predict_proba(valid[FEATURES]),
                             classes=list(pipeline.classes_), alpha=alpha)
    else:
        conf = fit_conformal(valid["spend"], predictions=pipeline.predict(valid[FEATURES]), alpha=alpha)
    ref = {**build_reference(make_frame(500), numeric=NUMERIC, categorical=CATEGORICAL), "conformal": conf}
    rec = env.store.register_version(
        name, run_id=None, artifact_key=save_model(env.artifacts, pipeline), reference_key=put_json(env.artifacts, ref),
        signature=SIGNATURE, task="classification" if classification else "regression",
        classes=[c.item() for c in pipeline.classes_] if classification else None, metrics={}, lineage={},
    )
    env.store.set_alias(name, "champion", rec.version)
    return conf


def test_a_regressor_answers_intervals_around_its_predictions(served: Served, env: Env, regressor: Pipeline) -> None:
    conf = calibrated(env, "priced", regressor, alpha=0.2)
    rows = [instance(i) for i in range(6)]
    r = served.client.post("/v1/models/priced/predict?intervals=true", json={"instances": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    pred = np.asarray(body["predictions"])
    np.testing.assert_allclose(pred, regressor.predict(pd.DataFrame(rows)[FEATURES]), rtol=1e-9)
    bounds = np.asarray(body["intervals"])
    assert bounds.shape == (6, 2) and conf["q"] > 0
    np.testing.assert_allclose(bounds[:, 0], pred - conf["q"], rtol=1e-12)
    np.testing.assert_allclose(bounds[:, 1], pred + conf["q"], rtol=1e-12)
    assert body["coverage"] == pytest.approx(0.8) and "prediction_sets" not in body
    # without the flag the answer is the plain one
    plain = served.client.post("/v1/models/priced/predict", json={"instances": rows}).json()
    assert "intervals" not in plain and "coverage" not in plain and plain["predictions"] == body["predictions"]


def test_a_classifier_answers_the_classes_its_set_holds(served: Served, env: Env, classifiers: list[Pipeline]) -> None:
    pipe = classifiers[0]
    conf = calibrated(env, "sets", pipe)
    rows = [instance(i) for i in range(40)]
    body = served.client.post("/v1/models/sets/predict?intervals=1", json={"instances": rows}).json()
    proba = pipe.predict_proba(pd.DataFrame(rows)[FEATURES])
    classes = pipe.classes_.tolist()
    expected = [[c for c, p in zip(classes, row, strict=True) if p >= 1 - conf["q"] - 1e-12] for row in proba]
    assert body["prediction_sets"] == expected
    assert body["coverage"] == pytest.approx(0.9) and "intervals" not in body
    # a set holds the predicted class whenever it holds anything, and some rows are unsure
    for s, label in zip(body["prediction_sets"], body["predictions"], strict=True):
        assert not s or label in s
    assert {len(s) for s in body["prediction_sets"]} - {1}, "every set was a single class: nothing is tested"


def test_a_version_without_calibration_is_a_422_naming_the_fix(served: Served, env: Env) -> None:
    # "churn" was registered without a reference profile
    r = served.client.post("/v1/models/churn/predict?intervals=true", json={"instances": [instance(0)]})
    assert r.status_code == 422 and "no conformal calibration" in r.text and "retrain it" in r.text


def test_a_batch_file_gets_the_same_intervals_and_sets(env: Env, regressor: Pipeline, classifiers: list[Pipeline],
                                                       tmp_path: Path) -> None:
    import json

    from modelpilot.errors import DataError
    from modelpilot.serving.batch import predict_batch

    frame = make_frame(50, seed=3)
    frame.to_parquet(tmp_path / "in.parquet")
    with pytest.raises(DataError, match="no conformal calibration.*score without --intervals"):
        predict_batch(env.cfg, env.store, env.artifacts, tmp_path / "in.parquet", tmp_path / "o.parquet", intervals=True)
    conf = calibrated(env, "priced", regressor)
    out = predict_batch(env.cfg, env.store, env.artifacts, tmp_path / "in.parquet", tmp_path / "r.parquet",
                        model="priced", intervals=True)
    scored = pd.read_parquet(out["output"])
    np.testing.assert_allclose(scored["interval_low"], scored["prediction"] - conf["q"], rtol=1e-12)
    np.testing.assert_allclose(scored["interval_high"], scored["prediction"] + conf["q"], rtol=1e-12)
    assert scored["coverage"].tolist() == pytest.approx([0.9] * len(scored))
    conf = calibrated(env, "sets", classifiers[0])
    out = predict_batch(env.cfg, env.store, env.artifacts, tmp_path / "in.parquet", tmp_path / "c.parquet",
                        model="sets", intervals=True)
    scored = pd.read_parquet(out["output"])
    classes = classifiers[0].classes_.tolist()
    for s, p0, p1 in zip(scored["prediction_set"], scored["proba_0"], scored["proba_1"], strict=True):
        assert json.loads(s) == [c for c, p in zip(classes, (p0, p1), strict=True) if p >= 1 - conf["q"] - 1e-12]
