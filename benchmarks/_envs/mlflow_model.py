"""Runs in the MLflow venv: fit the serving benchmark's pipeline and log it with MLflow.

    python mlflow_model.py TRAIN.parquet CHECK.parquet WORKDIR

Fits with the same code and seed as modelpilot's side (``serving_model.train``), logs it
with ``mlflow.sklearn.log_model`` (signature and input example inferred from the training
frame, as a user would; ``predict_proba`` as the pyfunc method, so both servers compute the
same thing), and prints one JSON line: the local model directory to serve, the versions,
and ``predict_proba`` of the CHECK rows (to prove both sides fitted the same model).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
import sklearn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_model import FEATURES, train  # noqa: E402


def main() -> None:
    train_path, check_path, workdir = sys.argv[1:4]
    warnings.filterwarnings("ignore")
    df = pd.read_parquet(train_path)
    pipe = train(df)
    mlflow.set_tracking_uri(f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}")
    mlflow.set_experiment("bench-serving")
    example = df[FEATURES].head(5)
    # MLflow 3.x saves scikit-learn models with skops and refuses types it has not been
    # told to trust; these are the ones a HistGradientBoosting pipeline holds (we made it).
    trusted = ["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    attempts = [  # MLflow 3.x with skops, then MLflow 3 without it, then MLflow 2
        {"name": "model", "skops_trusted_types": trusted},
        {"name": "model"},
        {"artifact_path": "model"},
    ]
    with mlflow.start_run():
        for i, kwargs in enumerate(attempts):
            try:
                info = mlflow.sklearn.log_model(pipe, input_example=example,
                                                pyfunc_predict_fn="predict_proba", **kwargs)
                break
            except TypeError:
                if i == len(attempts) - 1:
                    raise
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(Path(workdir) / "model"))
    check = pd.read_parquet(check_path)[FEATURES]
    print(json.dumps({
        "model_dir": local,
        "model_uri": info.model_uri,
        "mlflow": mlflow.__version__,
        "sklearn": sklearn.__version__,
        "proba": pipe.predict_proba(check).tolist(),
    }))


if __name__ == "__main__":
    main()
