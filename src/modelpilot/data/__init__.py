"""The data layer: read sources, snapshot them, resolve feature roles, validate.

>>> from modelpilot.data import synth, snapshot
>>> snapshot(synth.customers(100, seed=0), "memory", "ts").rows
100
"""

from __future__ import annotations

from modelpilot.data import synth
from modelpilot.data.features import FeatureSpec, infer_task, resolve_features
from modelpilot.data.snapshot import DatasetSnapshot, dataset_hash, snapshot
from modelpilot.data.sources import load_path, load_source, run_query
from modelpilot.data.validation import CHECKS, CheckResult, ValidationReport, validate

__all__ = [
    "CHECKS",
    "CheckResult",
    "DatasetSnapshot",
    "FeatureSpec",
    "ValidationReport",
    "dataset_hash",
    "infer_task",
    "load_path",
    "load_source",
    "resolve_features",
    "run_query",
    "snapshot",
    "synth",
    "validate",
]
