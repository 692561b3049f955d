"""Run by test_mlflow_import.py in its own process: a real MLflow SQLite store with history.

Registered model ``churn-lr``:
  v1  a scikit-learn Pipeline (imputer + logistic regression) saved as skops, alias champion
  v2  the same kind of model saved with cloudpickle, its file then replaced by a pickle that
      would create SENTINEL when unpickled; alias legacy
  v3  a Pipeline holding a numpy function (refused by the model allowlist); alias challenger
Writes probe rows and v1's predictions to FOLDER/expected.json so the test can compare.
With ``more``, adds to the existing store instead: v4 (skops, servable), alias challenger moved to it.
Usage: python mlflow_history.py FOLDER SENTINEL [more]
"""

import json
import pickle
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import skops.io as sio
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

folder, sentinel = Path(sys.argv[1]), sys.argv[2]
mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
client = MlflowClient()
more = sys.argv[3:] == ["more"]
experiment = (client.get_experiment_by_name("churn").experiment_id if more else
              mlflow.create_experiment("churn", artifact_location=(folder / "mlruns").as_uri()))
rng = np.random.default_rng(0)
X = pd.DataFrame({"tenure": rng.normal(12, 4, 300), "spend": rng.normal(50, 10, 300)})
y = ((X.tenure - 12) / 4 + (X.spend - 50) / 10 + rng.normal(0, 0.5, 300) > 0).astype(int)
signature = infer_signature(X, y)


class Payload:
    def __reduce__(self):  # what a malicious pickle does: call anything on load
        return (Path.touch, (Path(sentinel),))


models = {
    1: ("skops", make_pipeline(SimpleImputer(), LogisticRegression(C=0.1))),
    2: ("cloudpickle", make_pipeline(SimpleImputer(), LogisticRegression(C=1.0))),
    3: ("skops", make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(C=10.0))),
}
if more:
    models = {4: ("skops", make_pipeline(SimpleImputer(), LogisticRegression(C=0.5)))}
for version, (fmt, model) in models.items():
    C = model[-1].C
    with mlflow.start_run(experiment_id=experiment, run_name=f"lr-C{C}"):
        mlflow.log_params({"C": C, "imputer": "mean"})
        mlflow.set_tag("team", "risk")
        model.fit(X, y)
        for step in range(4):
            mlflow.log_metric("loss", round(1.0 / (step + 1 + C), 6), step=step)
        mlflow.log_metric("accuracy", float(model.score(X, y)))
        # MLflow loads a skops file back after saving it; the author trusts their own model's types
        trusted = sio.get_untrusted_types(data=sio.dumps(model)) if fmt == "skops" else None
        mlflow.sklearn.log_model(model, name="model", serialization_format=fmt, signature=signature,
                                 registered_model_name="churn-lr", skops_trusted_types=trusted,
                                 pip_requirements=["scikit-learn"])  # no requirement inference (a subprocess)
    if version == 2:  # the file an attacker (or an old pipeline) left behind
        local = Path(client.get_model_version_download_uri("churn-lr", "2").removeprefix("file://"))
        (local / "model.pkl").write_bytes(pickle.dumps(Payload()))
if more:
    client.set_registered_model_alias("churn-lr", "challenger", "4")
    sys.exit(0)
client.set_registered_model_alias("churn-lr", "champion", "1")
client.set_registered_model_alias("churn-lr", "legacy", "2")
client.set_registered_model_alias("churn-lr", "challenger", "3")
client.update_model_version("churn-lr", "1", description="first production model")

probe = X.head(20).copy()
probe.loc[0, "spend"] = np.nan
(folder / "expected.json").write_text(json.dumps({
    "rows": probe.to_dict(orient="list"),
    "predictions": models[1][1].predict(probe).tolist(),
    "proba": models[1][1].predict_proba(probe).tolist(),
}))
