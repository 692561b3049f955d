"""The checks every retraining set passes before a retrain starts.

The same validation as ``modelpilot train`` (:func:`modelpilot.data.validate`: types,
missing values and an empty target, ranges, outliers, duplicates, classes) runs on the
retraining set as the model will see it — the history sample plus the new labelled rows —
with the feature types the champion was trained with, so text in a numeric column is a
``types`` failure, not a crash. The new labelled rows are then checked on their own, where
the history sample cannot hide them: their classes (one class only, no labels at all) and
their scale against the champion's reference profile (a unit change, a 10x feed, two
swapped columns: :func:`modelpilot.data.validation.check_scale`).

A failing check raises :class:`~modelpilot.errors.ValidationFailed`; the controller turns it
into a ``retrain_blocked`` event naming the checks and leaves the champion serving.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelpilot.config import PilotConfig
from modelpilot.controller.data import RetrainData
from modelpilot.data.features import FeatureSpec
from modelpilot.data.validation import CheckResult, ValidationReport, check_scale, validate

_NUMERIC = {"float", "int", "number"}


def champion_features(cfg: PilotConfig, version: Any) -> FeatureSpec:
    """The feature roles the champion was trained with (from its signature)."""
    signature = list(version.signature)
    m = cfg.model
    return FeatureSpec(
        target=m.target, task=version.task,
        numeric=[c["name"] for c in signature if c.get("type") in _NUMERIC],
        categorical=[c["name"] for c in signature if c.get("type") not in _NUMERIC],
        time_column=m.time_column, id_column=m.id_column, segments=list(m.segments),
        types={c["name"]: str(c.get("type")) for c in signature},
    )


def check_retraining_data(
    cfg: PilotConfig, data: RetrainData, version: Any, reference: dict[str, Any]
) -> ValidationReport:
    """Validate a retraining set; returns the report (``report.raise_if_failed()`` blocks).

    Args:
        cfg: the config (``data.validation``).
        data: the retraining set from :func:`~modelpilot.controller.data.select_retraining_data`.
        version: the champion's version record (its signature and task).
        reference: the champion's reference profile.
    """
    spec = champion_features(cfg, version)
    batch = data.batch if data.batch is not None else pd.concat([data.train, data.holdout], ignore_index=True)
    history = data.train.iloc[: int(data.info.get("history_rows", 0))]
    # as the model sees it (no upsampled copies: those are duplicates on purpose)
    combined = pd.concat([history, batch], ignore_index=True) if len(history) else batch
    whole = validate(combined, cfg, spec)
    checks = [_named(c, "retraining set") for c in whole.checks]
    alone = validate(batch, cfg, spec)
    for name in ("missing", "class_balance"):
        result = alone.get(name)
        if result.status == "fail":
            checks.append(_named(result, f"{len(batch)} new labelled rows"))
    checks.append(_named(check_scale(batch, cfg, spec, reference), f"{len(batch)} new labelled rows"))
    return ValidationReport(checks)


def _named(result: CheckResult, where: str) -> CheckResult:
    if result.status not in ("fail", "warn"):
        return result
    return CheckResult(result.name, result.status, f"{where}: {result.message}", result.numbers, result.fix)
