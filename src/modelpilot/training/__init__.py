"""Training: validate → split → tune (Optuna) → fit → evaluate → profile → package → register.

``train(cfg, store, artifacts, executor)`` runs the whole pipeline; each step is a plain
function in its own module (:mod:`.split`, :mod:`.tune`, :mod:`.fit`, :mod:`.evaluate`,
:mod:`.profile`, :mod:`.package`) usable and testable alone.
"""

from __future__ import annotations

from modelpilot.training.estimators import (
    DEFAULT_ESTIMATORS,
    default_space,
    is_iterative,
    make_estimator,
    resolve_estimator,
)
from modelpilot.training.pipeline import primary_metric, train
from modelpilot.training.preprocess import build_pipeline
from modelpilot.training.result import TrainResult

__all__ = [
    "DEFAULT_ESTIMATORS",
    "TrainResult",
    "build_pipeline",
    "default_space",
    "is_iterative",
    "make_estimator",
    "primary_metric",
    "resolve_estimator",
    "train",
]
