"""Poisoned labels: refused at the door, and harmless when already in the log."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from serving_helpers import Env, Served, instance, register
from sklearn.pipeline import Pipeline

from modelpilot.controller.logwindow import LogWindow
from modelpilot.controller.monitor import summarize
from modelpilot.errors import RequestError
from modelpilot.serving import FeedbackBatch, PredictionBatch, PredictionLogWriter
from modelpilot.serving.labels import LabelDomain

FEEDBACK = "/v1/models/churn/feedback"


def _predict(served: Served, ids: list[str], model: str = "churn") -> None:
    r = served.client.post(f"/v1/models/{model}/predict",
                           json={"instances": [instance(i) for i in range(len(ids))], "ids": ids})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("bad", [1.0, True, "yes", "maybe", 7, "1", None, [1], 0.0])
def test_a_label_that_is_not_a_class_is_refused(served: Served, env: Env, bad: Any) -> None:
    _predict(served, ["a", "b"])
    r = served.client.post(FEEDBACK, json={"ids": ["a", "b"], "labels": [1, bad]})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "ids ['b']" in message and "expected one of [0, 1] as JSON integers" in message
    # nothing of the refused request is logged; a good request still is
    ok = served.client.post(FEEDBACK, json={"ids": ["a", "b"], "labels": [1, 0]})
    assert ok.status_code == 200 and ok.json()["accepted"] == 2
    assert served.app.state.writer.flush(10)
    labels = served.app.state.reader_for("churn").feedback()["label"].tolist()
    assert labels == ["1", "0"]


def test_regression_labels_must_be_finite_numbers(served: Served, env: Env, regressor: Pipeline) -> None:
    register(env.store, env.artifacts, "spend", regressor)
    _predict(served, ["r1", "r2", "r3"], model="spend")
    url = "/v1/models/spend/feedback"
    for bad in ["12", True, None, "NaN"]:
        r = served.client.post(url, json={"ids": ["r1", "r2"], "labels": [3.5, bad]})
        assert r.status_code == 422, (bad, r.text)
        assert "ids ['r2']" in r.json()["error"]["message"]
        assert "finite JSON numbers" in r.json()["error"]["message"]
    r = served.client.post(url, content=b'{"ids": ["r1"], "labels": [Infinity]}')
    assert r.status_code == 422 and "ids ['r1']" in r.json()["error"]["message"]
    ok = served.client.post(url, json={"ids": ["r1", "r2", "r3"], "labels": [3.5, -2, 1e3]})
    assert ok.status_code == 200 and ok.json()["accepted"] == 3


def test_label_domain_rules() -> None:
    binary = LabelDomain("classification", (0, 1))
    assert binary.parse(["x", "y"], [0, 1]) == ["0", "1"]
    with pytest.raises(RequestError, match=r"ids \['x', 'z'\] \(values \[True, 1.0\]\)"):
        binary.parse(["x", "y", "z"], [True, 0, 1.0])
    words = LabelDomain("classification", ("no", "yes"))
    assert words.parse(["a"], ["yes"]) == ["yes"]
    with pytest.raises(RequestError, match="as JSON strings"):
        words.parse(["a"], ["Yes"])
    floats = LabelDomain("classification", (0.0, 1.0))
    assert floats.parse(["a", "b"], [1, 0.0]) == ["1.0", "0.0"]  # the logged str(class)
    flags = LabelDomain("classification", (False, True))
    assert flags.parse(["a"], [True]) == ["True"]
    with pytest.raises(RequestError):
        flags.parse(["a"], [1])
    # the reading side: which logged strings a version can use
    assert binary.usable(["1", "0", "1.0", "yes", None, "7"]).tolist() == [True, True, False, False, False, False]
    reg = LabelDomain("regression")
    assert reg.usable(["1.5", "nan", "inf", "x", None, "-3"]).tolist() == [True, False, False, False, False, True]


def _log_rows(env: Env, ids: list[str], labels: list[str]) -> None:
    """Predictions served by v1 and labels written straight to the log (no door)."""
    model = env.store.get_version("churn", 1)
    n = len(ids)
    proba = np.column_stack([np.full(n, 0.3), np.full(n, 0.7)])
    preds = np.empty(n, dtype=object)
    preds[:] = [1] * n
    feats: dict[str, np.ndarray] = {}
    for key in ("age", "income"):
        feats[key] = np.array([float(instance(i)[key]) for i in range(n)])
    for key in ("plan", "region"):
        col = np.empty(n, dtype=object)
        col[:] = [instance(i)[key] for i in range(n)]
        feats[key] = col
    writer = PredictionLogWriter(env.artifacts)
    writer.log_predictions(PredictionBatch(model="churn", ids=ids, version=model.version, predictions=preds,
                                           scores=proba[:, 1], probabilities=proba, features=feats))
    writer.log_feedback(FeedbackBatch(model="churn", ids=ids, labels=labels))
    writer.close()


def test_bad_labels_already_in_the_log_do_not_stop_monitoring(env: Env) -> None:
    ids = [f"p{i}" for i in range(40)]
    labels = ["1", "0"] * 15 + ["1.0", "True", "yes", "maybe", "7", "1.0", "True", "yes", "maybe", "7"]
    _log_rows(env, ids, labels)
    version = env.store.get_version("churn", 1)
    # the reproduction: read without the guard, one bad label stops the monitoring pass
    raw = LogWindow(env.artifacts, "churn")
    with pytest.raises(ValueError):
        summarize(env.cfg, raw.window(), raw.labelled(), version, {"columns": {}})
    guarded = LogWindow(env.artifacts, "churn", env.store)
    labelled = guarded.labelled()
    assert len(labelled) == 30 and guarded.unusable_labels == 10
    summary, _ = summarize(env.cfg, guarded.window(), labelled, version, {"columns": {}})
    assert summary["n_labelled"] == 30
    assert summary["performance"] == pytest.approx(0.5)  # predicted 1 everywhere, half are 1
