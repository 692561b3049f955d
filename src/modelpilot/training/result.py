"""What :func:`~modelpilot.training.pipeline.train` hands back."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: NumPy scalars to Python, NaN/inf to ``None``, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class TrainResult:
    """The outcome of one training run; ``to_dict()`` is what ``--json`` prints.

    Attributes:
        model, version: the registered version (``status`` says registered or rejected).
        aliases: the aliases pointing at this version after training (``["champion"]``
            for a first version that passed the gate).
        metrics, train_metrics: validation and training metrics.
        primary_metric, task: what was optimised and judged.
        overfitting: ``{"gap", "flagged", "bound", "metric"}`` of the primary metric.
        segments: ``[{"segment", "value", "rows", <metrics>}]`` on validation.
        feature_importance: ``[{"feature", "importance", "std"}]``, largest first.
        learning_curve: ``{"metric", "steps", "train", "validation"}`` or ``None``.
        trials: ``[{"number", "params", "value", "state"}]`` of the search (empty if none).
        best_params: the parameters the final model was fitted with.
        gate: ``{"passed", "reasons", "checks"}``.
        validation: the data validation report.
        dataset: ``{"hash", "source", "rows", "time_min", "time_max"}``.
        split: ``{"method", "train_rows", "validation_rows", "cutoff"}``.
        profile: ``{"stages": {name: {"wall_s", "cpu_s"}}, "wall_s", "cpu_s",
            "peak_memory_mb", "bytes_read", "bytes_written", ...}``.
        cost: ``{"compute", "storage", "total", "currency", ...}``.
        warm_start: ``{"used": bool, "reason": str}``.
        reused: True when ``idempotency_key`` matched an existing version, which is
            returned as is without training again (most other fields are then empty).
    """

    model: str
    version: int
    status: str
    aliases: list[str]
    run_id: int | None
    task: str
    primary_metric: str
    metrics: dict[str, float]
    train_metrics: dict[str, float] = field(default_factory=dict)
    overfitting: dict[str, Any] = field(default_factory=dict)
    segments: list[dict[str, Any]] = field(default_factory=list)
    feature_importance: list[dict[str, Any]] = field(default_factory=list)
    learning_curve: dict[str, Any] | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)
    best_params: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    artifact_key: str = ""
    reference_key: str | None = None
    warm_start: dict[str, Any] = field(default_factory=dict)
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values."""
        out: dict[str, Any] = to_jsonable(asdict(self))
        return out
