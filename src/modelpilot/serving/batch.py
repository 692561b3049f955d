"""Batch scoring: a Parquet/CSV file in, predictions out, every row in the prediction log.

The same model (the champion), the same predict function and the same prediction log
as the server, so monitoring sees batch traffic exactly like online traffic.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelpilot.config import PilotConfig
from modelpilot.data.online import FeatureTable
from modelpilot.errors import DataError
from modelpilot.serving.cache import LoadedModel, ModelCache
from modelpilot.serving.explain import Explainer
from modelpilot.serving.predlog import PredictionBatch, PredictionLogWriter
from modelpilot.serving.schema import new_ids
from modelpilot.serving.uncertainty import Uncertainty

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore

CHUNK_ROWS = 50_000
_READERS = {".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".csv": pd.read_csv}


def _suffix(path: Path, role: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DataError(
            f"{role} file {str(path)!r} has an unsupported extension {suffix!r}: use .parquet or .csv"
        )
    return suffix


def _columns(model: LoadedModel, frame: pd.DataFrame, path: Path) -> dict[str, np.ndarray]:
    """Signature columns as the server builds them (float64 numeric, object categorical)."""
    names = model.schema.names
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"{str(path)!r} lacks the feature column(s) {missing} of model {model.name!r} "
            f"v{model.version}; it needs all of {list(names)}"
        )
    cols: dict[str, np.ndarray] = {}
    for name in names:
        series = frame[name]
        if name in model.schema.numeric:
            try:
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                raise DataError(
                    f"column {name!r} of {str(path)!r} must be numeric (model {model.name!r} "
                    f"expects {model.schema.types[names.index(name)]}); it holds text"
                ) from None
            if np.isinf(values).any():
                raise DataError(f"column {name!r} of {str(path)!r} holds infinite values")
            cols[name] = values
        else:
            values = series.to_numpy(dtype=object)
            values[pd.isna(values)] = None
            cols[name] = values
    return cols


def predict_batch(
    cfg: PilotConfig,
    store: Any,
    artifacts: ArtifactStore,
    input_path: str | Path,
    output_path: str | Path,
    model: str | None = None,
    explain: bool = False,
    intervals: bool = False,
) -> dict[str, Any]:
    """Score a file with the champion and log every row.

    The output holds the input's columns plus ``request_id``, ``prediction``, ``score``
    and, for classifiers, one ``proba_<class>`` column per class. Request ids come from
    ``model.id_column`` when the input has it, else they are generated.

    Args:
        cfg: the config (paths relative to ``cfg.base_dir``; log flush settings).
        store: the metadata store.
        artifacts: the artifact store (model file, prediction log).
        input_path: a ``.parquet`` or ``.csv`` file.
        output_path: where to write; ``.parquet`` or ``.csv``.
        model: the model name (default ``cfg.model.name``).
        explain: add ``base_value``, one ``contribution_<feature>`` column per feature,
            ``explained_output`` (what they add up to) and ``explained_output_kind``
            (``probability``, ``raw_score`` or ``prediction``: see
            :mod:`modelpilot.monitoring.explain`).
        intervals: add the version's conformal ``interval_low`` and ``interval_high``
            (regression) or ``prediction_set`` (classification: a JSON list of classes), and
            ``coverage``, what they are promised to hold (:mod:`modelpilot.serving.uncertainty`).

    Returns:
        ``{"model", "version", "rows", "output", "logged", "seconds"}``.

    Raises:
        DataError: the input is missing, unreadable or lacks feature columns, or --intervals was
            asked of a version without a conformal calibration.
        ModelNotFound: the model or its champion does not exist.
    """
    started = time.perf_counter()
    name = model or cfg.model.name
    src, dest = cfg.resolve_path(input_path), cfg.resolve_path(output_path)
    read = _READERS[_suffix(src, "input")]
    out_suffix = _suffix(dest, "output")
    if not src.is_file():
        raise DataError(f"no input file at {str(src)!r}: pass an existing .parquet or .csv file")
    loaded = ModelCache(store, artifacts).load(name)
    frame = read(src)
    online = FeatureTable.of(cfg)
    if online is not None and not any(f in frame.columns for f in online.spec.features):
        frame = online.fill(frame, online.spec.event_time or cfg.model.time_column)
    id_col = cfg.model.id_column
    writer = PredictionLogWriter(
        artifacts, flush_rows=cfg.serving.log_flush_rows, flush_interval=cfg.serving.log_flush_interval
    ).start()
    parts = []
    explainer = Explainer(artifacts) if explain else None
    uncertainty = Uncertainty(artifacts, error=DataError, skip="score without --intervals") if intervals else None
    if uncertainty is not None:
        uncertainty.conformal(loaded)  # no calibration: a DataError before anything is scored
    try:
        for lo in range(0, len(frame), CHUNK_ROWS):
            chunk = frame.iloc[lo : lo + CHUNK_ROWS]
            cols = _columns(loaded, chunk, src)
            t0 = time.perf_counter()
            out = loaded.predict_columns(cols)
            ms = (time.perf_counter() - t0) * 1000.0 / max(len(chunk), 1)
            if id_col and id_col in chunk.columns:
                ids = chunk[id_col].astype(str).tolist()
            else:
                ids = new_ids(len(chunk))
            writer.log_predictions(
                PredictionBatch(
                    model=name, ids=ids, version=loaded.version, predictions=out.labels,
                    scores=out.scores, probabilities=out.probabilities, features=cols,
                    latency_ms=ms,
                )
            )
            result = {"request_id": ids, "prediction": out.labels, "score": out.scores}
            if out.probabilities is not None and loaded.classes is not None:
                for k, cls in enumerate(loaded.classes):
                    result[f"proba_{cls}"] = out.probabilities[:, k]
            if explainer is not None:
                why = explainer.explanation(loaded, cols)
                result["base_value"] = why.base_value
                for j, feature in enumerate(why.features):
                    result[f"contribution_{feature}"] = why.contributions[:, j]
                result["explained_output"] = why.output
                result["explained_output_kind"] = np.full(len(why.output), why.output_kind)
            if uncertainty is not None:
                bounds = uncertainty.answer(loaded, out)
                if "intervals" in bounds:
                    result["interval_low"], result["interval_high"] = bounds["intervals"][:, 0], bounds["intervals"][:, 1]
                else:
                    result["prediction_set"] = [json.dumps(s) for s in bounds["prediction_sets"]]
                result["coverage"] = np.full(len(chunk), bounds["coverage"])
            parts.append(chunk.reset_index(drop=True).join(pd.DataFrame(result)))
    finally:
        writer.close()
    scored = pd.concat(parts, ignore_index=True) if parts else frame.assign(prediction=[])
    dest.parent.mkdir(parents=True, exist_ok=True)
    if out_suffix == ".csv":
        scored.to_csv(dest, index=False)
    else:
        scored.to_parquet(dest, index=False)
    return {
        "model": name, "version": loaded.version, "rows": len(frame), "output": str(dest),
        "logged": writer.rows_written, "seconds": round(time.perf_counter() - started, 3),
    }
