"""The retraining job: a module-level function the executor runs in a worker process."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from modelpilot.artifacts import ArtifactStore, load_model, open_artifacts
from modelpilot.config import PilotConfig
from modelpilot.executors import Executor, make_executor
from modelpilot.store import Store


def write_frame(artifacts: ArtifactStore, frame: pd.DataFrame) -> str:
    """Store a frame as a content-addressed Parquet artifact; returns its key."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return artifacts.put_bytes(buf.getvalue(), suffix=".parquet")


def read_frame(artifacts: ArtifactStore, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(artifacts.get_bytes(key)))


def run_training(
    cfg: PilotConfig,
    train_key: str,
    idempotency_key: str,
    champion: int | None,
    *,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    executor: Executor | None = None,
    resampled_rows: int = 0,
) -> dict[str, Any]:
    """Retrain from the stored data under ``idempotency_key``; returns ``TrainResult.to_dict()``.

    ``resampled_rows``: the last rows of the data are upsampled copies; they train the model
    but stay out of its reference profile (which must look like live traffic).

    In a worker process the store, artifacts and executor are opened here (and closed);
    the version is registered at most once per key, whoever runs the job.
    """
    from modelpilot.training import train

    own = store is None
    store = store or Store.open(cfg.store_url)
    artifacts = artifacts or open_artifacts(cfg.artifacts_url, cfg.artifacts.options)
    executor = executor or make_executor(cfg.executor)
    try:
        data = read_frame(artifacts, train_key)
        warm = None
        if cfg.retraining.warm_start and champion is not None:
            warm = load_model(artifacts, store.get_version(cfg.model.name, champion).artifact_key)
        result = train(
            cfg, store, artifacts, executor, data=data, kind="retrain", parent_version=champion,
            warm_start_from=warm, tune=cfg.retraining.tune, idempotency_key=idempotency_key, promote_first=False,
            resampled_rows=resampled_rows,
        )
        return result.to_dict()
    finally:
        if own:
            executor.shutdown()
            store.close()
