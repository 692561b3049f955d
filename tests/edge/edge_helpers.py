"""A real fleet home for the tests: store, artifacts, a registered version with its reference
profile, a signing key and the published bundle — built the way training and export build them."""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import socket
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from serving_helpers import CATEGORICAL, NUMERIC, SIGNATURE, make_config, make_frame
from sklearn.ensemble import HistGradientBoostingClassifier

from modelpilot.artifacts import ArtifactStore, open_artifacts, put_json, save_model
from modelpilot.config import PilotConfig
from modelpilot.edge.bundle import build_bundle, keygen, load_signing_key, public_bytes, publish
from modelpilot.edge.export import registered_graph
from modelpilot.monitoring.reference import build_reference, score_vector
from modelpilot.store import Store
from modelpilot.testing.services import unavailable
from modelpilot.training import build_pipeline
from modelpilot.training.package import save_onnx

for _module in ("onnxruntime", "skl2onnx", "cryptography"):
    if importlib.util.find_spec(_module) is None:
        unavailable(f"the edge tests need {_module}: pip install 'modelpilot[edge]'")


@dataclass
class Fleet:
    cfg: PilotConfig
    store: Store
    artifacts: ArtifactStore
    key: Any
    public_key: bytes
    public_path: Path
    bundle: bytes
    tmp: Path

    def register(self, seed: int = 0, max_iter: int = 10, champion: bool = True) -> tuple[int, bytes]:
        """Train, register (with a reference profile) and publish a version; (version, bundle)."""
        return register_version(self, seed=seed, max_iter=max_iter, champion=champion)


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    private, public = keygen(tmp_path_factory.mktemp("keys") / "signing.key")
    return load_signing_key(private), public


@functools.cache
def trained(seed: int, max_iter: int) -> tuple[Any, dict[str, Any], pd.DataFrame, float]:
    """A fitted pipeline, its reference profile, validation rows and accuracy (cached)."""
    train = make_frame(600, seed)
    # the product's own pipeline (its casts make categorical columns ONNX string inputs)
    pipe = build_pipeline(SimpleNamespace(numeric=NUMERIC, categorical=CATEGORICAL),
                          HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed))
    pipe.fit(train[NUMERIC + CATEGORICAL], train["churned"])
    val = make_frame(3000, seed + 100)
    proba = pipe.predict_proba(val[NUMERIC + CATEGORICAL])
    ref = build_reference(train[NUMERIC + CATEGORICAL], numeric=NUMERIC, categorical=CATEGORICAL)
    out = build_reference(pd.DataFrame(index=range(len(val))), numeric=[], categorical=[],
                          scores=score_vector(proba), predictions=pipe.predict(val[NUMERIC + CATEGORICAL]))
    ref["score"], ref["prediction"] = out["score"], out["prediction"]
    accuracy = float(np.mean(pipe.predict(val[NUMERIC + CATEGORICAL]) == val["churned"]))
    return pipe, ref, val[NUMERIC + CATEGORICAL], accuracy


def register_version(f: Fleet, *, seed: int = 0, max_iter: int = 10, champion: bool = True) -> tuple[int, bytes]:
    """Register a version the way training does (skops file, reference, checked ONNX graph),
    then export and publish its bundle."""
    pipe, ref, val, accuracy = trained(seed, max_iter)
    onnx = save_onnx(f.artifacts, pipe, SIGNATURE, val)
    assert onnx["status"] == "converted", onnx
    record = f.store.register_version(
        "churn", run_id=None, artifact_key=save_model(f.artifacts, pipe), reference_key=put_json(f.artifacts, ref),
        signature=SIGNATURE, task="classification", classes=[c.item() for c in pipe.classes_],
        metrics={"accuracy": accuracy},
        lineage={"estimator": type(pipe[-1]).__name__, "seed": seed, "onnx": onnx},
    )
    if champion:
        f.store.set_alias("churn", "champion", record.version)
    graph, _ = registered_graph(f.artifacts, record)
    bundle = build_bundle(record, graph, ref, f.key, inputs=onnx["inputs"], output=onnx["output"],
                          target="churned", parity=onnx["parity"])
    publish(f.store, f.artifacts, "churn", record.version, bundle)
    return record.version, bundle


@pytest.fixture
def fleet(tmp_path: Path, signing_key: tuple[Any, Path]) -> Iterator[Fleet]:
    """A home with model "churn" v1 (champion) and its published bundle."""
    key, public_path = signing_key
    cfg = make_config(tmp_path)
    store = Store.open(cfg.store_url)
    artifacts = open_artifacts(cfg.artifacts_url)
    f = Fleet(cfg, store, artifacts, key, public_bytes(key), public_path, b"", tmp_path)
    _, f.bundle = register_version(f)
    yield f
    store.close()


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def shifted_frame(n: int, seed: int) -> pd.DataFrame:
    """Rows whose age and plan moved away from the training distribution."""
    df = make_frame(n, seed)
    df["age"] = df["age"] + 30
    df["plan"] = np.where(np.arange(n) % 5 == 0, df["plan"], "max")
    return df


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def src_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}


def rezip(bundle: bytes, change: dict[str, bytes | None]) -> bytes:
    """The bundle with files replaced (bytes), added, or removed (None)."""
    src = zipfile.ZipFile(io.BytesIO(bundle))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in src.namelist():
            if name in change and change[name] is None:
                continue
            out.writestr(name, change.get(name) or src.read(name))
        for name, data in change.items():
            if name not in src.namelist() and data is not None:
                out.writestr(name, data)
    return buf.getvalue()
