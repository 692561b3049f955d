"""``POST /predict?explain=true``: contributions that add up to the model's output."""

from __future__ import annotations

import numpy as np
import pandas as pd
from serving_helpers import CATEGORICAL, NUMERIC, SIGNATURE, Env, Served, instance, make_frame
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import put_json, save_model
from modelpilot.monitoring import build_reference


def with_reference(env: Env, name: str, pipeline: Pipeline) -> None:
    classification = hasattr(pipeline, "classes_")
    ref = build_reference(make_frame(500), numeric=NUMERIC, categorical=CATEGORICAL)
    rec = env.store.register_version(
        name, run_id=None, artifact_key=save_model(env.artifacts, pipeline), reference_key=put_json(env.artifacts, ref),
        signature=SIGNATURE, task="classification" if classification else "regression",
        classes=[c.item() for c in pipeline.classes_] if classification else None,
        metrics={}, lineage={},
    )
    env.store.set_alias(name, "champion", rec.version)


def test_explained_predictions_add_up_to_the_output(served: Served, env: Env, classifiers: list[Pipeline]) -> None:
    with_reference(env, "explained", classifiers[0])
    rows = [instance(i) for i in range(5)]
    r = served.client.post("/v1/models/explained/predict?explain=true", json={"instances": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    proba = np.asarray(body["probabilities"])[:, 1]
    expected = classifiers[0].predict_proba(pd.DataFrame(rows)[NUMERIC + CATEGORICAL])[:, 1]
    np.testing.assert_allclose(proba, expected, rtol=1e-9)
    # HistGradientBoosting: exact path contributions on the raw score (log-odds)
    pipe = classifiers[0]
    log_odds = pipe[-1].decision_function(pipe[:-1].transform(pd.DataFrame(rows)[NUMERIC + CATEGORICAL]))
    for row, p, z in zip(body["explanations"], proba, log_odds, strict=True):
        assert set(row["contributions"]) == set(NUMERIC + CATEGORICAL)
        assert (row["method"], row["output_kind"]) == ("tree_path", "raw_score")
        assert abs(row["output"] - z) < 1e-9 and abs(1 / (1 + np.exp(-row["output"])) - p) < 1e-9
        assert abs(row["base_value"] + sum(row["contributions"].values()) - row["output"]) < 1e-9
    # without the flag the answer carries no explanations
    plain = served.client.post("/v1/models/explained/predict", json={"instances": rows}).json()
    assert "explanations" not in plain and plain["predictions"] == body["predictions"]


def test_regression_explanations_and_a_version_without_reference(served: Served, env: Env, regressor: Pipeline) -> None:
    with_reference(env, "priced", regressor)
    rows = [instance(i) for i in range(3)]
    body = served.client.post("/v1/models/priced/predict?explain=1", json={"instances": rows}).json()
    for row, pred in zip(body["explanations"], body["predictions"], strict=True):
        assert abs(row["base_value"] + sum(row["contributions"].values()) - pred) < 1e-9
        assert row["output"] == pred
    # "churn" was registered without a reference profile: a clear 4xx, not a 500
    r = served.client.post("/v1/models/churn/predict?explain=true", json={"instances": rows})
    assert r.status_code == 400 and "reference profile" in r.text
