"""Fitting the final model, fresh or warm-started from a parent version.

Warm start (``retraining.warm_start``): the parent's fitted pipeline is copied (the
caller's object — perhaps a model served from a cache — is never changed), its
*preprocessing is kept as fitted* (refitting it would renumber the ordinal category
codes the parent's trees split on; new categories map to the unknown code ``-1``), and
its estimator is set to ``warm_start=True`` with ``max_iter`` / ``n_estimators`` raised
by the configured count, so boosting adds rounds (or a forest adds trees) trained on the
new data on top of the parent's. When that is impossible — the estimator cannot warm
start, the feature columns or classes changed, or the estimator refuses — the model is
fitted from scratch and ``reason`` says why.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from modelpilot.data import FeatureSpec
from modelpilot.training.estimators import iteration_param, make_estimator
from modelpilot.training.preprocess import build_pipeline


def _fitted_count(model: Any, name: str) -> int:
    """Rounds / trees already fitted (``n_iter_``, ``estimators_``), else the parameter."""
    if name == "max_iter" and hasattr(model, "n_iter_"):
        return int(model.n_iter_)
    if hasattr(model, "estimators_"):
        return len(model.estimators_)
    return int(model.get_params()[name])


def _try_warm_start(
    parent: Pipeline, X: pd.DataFrame, y: pd.Series, params: dict[str, Any], task: str
) -> tuple[Pipeline | None, str]:
    model = parent[-1]
    name = iteration_param(model)
    if name is None:
        return None, f"{type(model).__name__} cannot warm start"
    names_in = getattr(parent, "feature_names_in_", None)
    if names_in is None or list(names_in) != list(X.columns):
        return None, "the feature columns differ from the parent version's"
    if task == "classification" and not np.isin(np.unique(y.to_numpy()), parent.classes_).all():
        return None, "the data holds classes the parent version never saw"
    pipe = copy.deepcopy(parent)
    est = pipe[-1]
    # rounds to add: the configured count, else the class default (never the parent's grown total)
    extra = int(params.get(name, type(model)().get_params()[name]))
    est.set_params(warm_start=True, **{name: _fitted_count(est, name) + extra})
    try:
        est.fit(pipe[:-1].transform(X), y)
    except ValueError as exc:  # e.g. the estimator validates the classes or the shapes
        return None, f"warm start refused by {type(est).__name__}: {exc}"
    # later fits of this bundle (e.g. by a user) should start over, not keep growing
    est.set_params(warm_start=False)
    return pipe, f"continued {type(est).__name__} from {_fitted_count(model, name)} to {_fitted_count(est, name)} {name}"


def fit_final(
    features: FeatureSpec,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    estimator: str | None,
    task: str,
    params: dict[str, Any],
    seed: int,
    warm_start_from: Pipeline | None = None,
) -> tuple[Pipeline, dict[str, Any]]:
    """Fit the bundle on the training split.

    Returns:
        The fitted pipeline and ``{"used": bool, "reason": str}`` about warm starting.

    Raises:
        ConfigError: the estimator cannot be built with ``params``.
    """
    if warm_start_from is not None:
        pipe, reason = _try_warm_start(warm_start_from, X, y, params, task)
        if pipe is not None:
            return pipe, {"used": True, "reason": reason}
        info = {"used": False, "reason": reason}
    else:
        info = {"used": False, "reason": "no parent model given"}
    fresh = build_pipeline(features, make_estimator(estimator, task, params, seed))
    fresh.fit(X, y)
    return fresh, info
