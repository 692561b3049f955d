"""Drift of a whole frame against a reference profile, plus prediction drift."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from modelpilot.errors import DataError
from modelpilot.monitoring.drift import BaseDriftMethod, DriftResult, get_drift_method
from modelpilot.monitoring.multivariate import DomainClassifierDrift, PCAReconstructionDrift, encode
from modelpilot.monitoring.reference import FeatureLists, score_vector

_SCORE = "__score__"
_LABEL = "__prediction__"


def drift_report(
    reference_profile: dict[str, Any],
    current: pd.DataFrame,
    features: FeatureLists | Sequence[str] | None = None,
    method: str | BaseDriftMethod = "auto",
    threshold: float | None = None,
    *,
    scores: ArrayLike | None = None,
    predictions: ArrayLike | None = None,
    joint: str = "pca",
) -> dict[str, Any]:
    """Score every feature of ``current`` against the reference, and the model's outputs.

    Args:
        reference_profile: from :func:`build_reference` (or a drift method's ``fit``).
        current: the monitored window's features (not modified).
        features: the columns to score (a FeatureSpec-like or names); None = all profiled.
        method: a registry name (``monitoring.drift_method``) or a drift-method object.
        threshold: overrides the method's default threshold (``monitoring.drift_threshold``);
            ignored when ``method`` is an object.
        scores: the window's scores (positive-class probability or regression output),
            compared with the profile's ``score`` section.
        predictions: the window's predicted labels, compared with its ``prediction`` section.
        joint: the joint-drift detectors run when the profile has a ``joint`` section:
            ``"pca"`` (reconstruction error), ``"classifier"`` (domain classifier; needs the
            profile's row sample), ``"both"`` or ``"none"``.

    Returns:
        A JSON-serialisable dict: ``method``, ``n_reference``, ``n_current``, ``columns``
        (name → statistic, p_value, drifted, method, threshold, type and the missing
        fractions of both sides), ``n_columns``, ``n_drifted``, ``share_drifted``,
        ``drifted_columns``, ``prediction_drift`` with ``score`` and ``label`` entries
        (None when not given or not in the profile), and ``joint``: detector name →
        statistic, p_value, drifted, method, threshold (empty without a joint profile).

    Raises:
        DataError: columns missing on either side, or outputs of the wrong length.
        ConfigError: unknown method name.
    """
    scorer = (
        method
        if isinstance(method, BaseDriftMethod)
        else get_drift_method(method, **({} if threshold is None else {"threshold": threshold}))
    )
    results = scorer.score(reference_profile, current, columns=_names(features))
    specs = reference_profile["columns"]
    columns: dict[str, Any] = {}
    for name, res in results.items():
        cur = current[name]
        columns[name] = {
            **_jsonable(res),
            "type": specs[name]["type"],
            "missing_reference": specs[name]["missing_fraction"],
            "missing_current": _missing_fraction(cur, specs[name]["type"]),
        }
    drifted = [n for n, r in results.items() if r.drifted]
    return {
        "method": scorer.name,
        "n_reference": int(reference_profile.get("rows", 0)),
        "n_current": int(len(current)),
        "columns": columns,
        "n_columns": len(results),
        "n_drifted": len(drifted),
        "share_drifted": len(drifted) / len(results) if results else 0.0,
        "drifted_columns": drifted,
        "joint": _joint(reference_profile.get("joint"), current, joint),
        "prediction_drift": {
            "score": _output_drift(reference_profile.get("score"), scores, scorer, len(current),
                                   numeric=True),
            "label": _output_drift(reference_profile.get("prediction"), predictions, scorer,
                                   len(current), numeric=False),
        },
    }


def _joint(profile: dict[str, Any] | None, current: pd.DataFrame, which: str) -> dict[str, Any]:
    if profile is None or which == "none" or len(current) < 10:
        return {}
    detectors: list[Any] = []
    if which in ("pca", "both"):
        detectors.append(PCAReconstructionDrift())
    if which in ("classifier", "both") and profile.get("sample"):
        detectors.append(DomainClassifierDrift())
    X = encode(profile["encoding"], current)
    return {d.name: _jsonable(d.score_matrix(profile, X)) for d in detectors}


def _names(features: FeatureLists | Sequence[str] | None) -> list[str] | None:
    if features is None:
        return None
    if hasattr(features, "numeric") and hasattr(features, "categorical"):
        return [*features.numeric, *features.categorical]
    return list(features)


def _output_drift(
    spec: dict[str, Any] | None,
    values: ArrayLike | None,
    scorer: BaseDriftMethod,
    rows: int,
    *,
    numeric: bool,
) -> dict[str, Any] | None:
    if spec is None or values is None:
        return None
    vec = score_vector(values) if numeric else np.asarray(values).ravel()
    if len(vec) != rows:
        what = "scores" if numeric else "predictions"
        raise DataError(
            f"{what} has {len(vec)} rows but the current frame has {rows}; pass one per row"
        )
    name = _SCORE if numeric else _LABEL
    frame = pd.DataFrame({name: vec})
    res = scorer.score({"columns": {name: spec}}, frame)[name]
    return _jsonable(res)


def _jsonable(res: DriftResult) -> dict[str, Any]:
    # plain Python floats/bools (no numpy scalars) so json/orjson take the report as is
    return {
        "statistic": float(res.statistic),
        "p_value": None if res.p_value is None else float(res.p_value),
        "drifted": bool(res.drifted),
        "method": res.method,
        "threshold": float(res.threshold),
    }


def _missing_fraction(series: pd.Series, kind: str) -> float:
    if not len(series):
        return 0.0
    if kind == "numeric":
        values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        return float(1.0 - np.isfinite(values).mean())
    return float(series.isna().mean())
