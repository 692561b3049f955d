"""Estimators by import path, their default search spaces and their capabilities.

``model.estimator`` in ``pilot.yaml`` is the import path of a scikit-learn compatible
class (``sklearn.ensemble.RandomForestClassifier``, ``lightgbm.LGBMClassifier``...). Model
files may hold only the types of the estimators listed in :data:`DEFAULT_SPACES` and the
decision trees (``modelpilot.artifacts._allowlist``); another class trains but its model is
refused when it is saved, with a message that says so. The rest of training never branches on a class name: it asks this module whether an
estimator is *iterative* (can grow by warm start, so trials can be pruned and a retrain
can continue from its parent) and whether it wants one-hot or ordinal categoricals.

Example::

    >>> cls = resolve_estimator(None, "classification")
    >>> cls.__name__, is_iterative(cls()), iteration_param(cls())
    ('HistGradientBoostingClassifier', True, 'max_iter')
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Any

from modelpilot.config import ParamSpec
from modelpilot.errors import ConfigError

DEFAULT_ESTIMATORS: dict[str, str] = {
    "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}

_HGB_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    "max_leaf_nodes": {"type": "int", "low": 8, "high": 64, "log": True},
    "min_samples_leaf": {"type": "int", "low": 5, "high": 80, "log": True},
    "l2_regularization": {"type": "float", "low": 1e-6, "high": 1.0, "log": True},
    "max_iter": {"type": "int", "low": 50, "high": 300, "step": 25},
}
_FOREST_SPACE: dict[str, dict[str, Any]] = {
    "n_estimators": {"type": "int", "low": 50, "high": 300, "step": 25},
    "max_depth": {"type": "int", "low": 3, "high": 20},
    "min_samples_leaf": {"type": "int", "low": 1, "high": 20, "log": True},
    "max_features": {"type": "float", "low": 0.2, "high": 1.0},
}
_LGBM_SPACE: dict[str, dict[str, Any]] = {
    "n_estimators": {"type": "int", "low": 50, "high": 400, "step": 25},
    "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    "num_leaves": {"type": "int", "low": 8, "high": 128, "log": True},
    "min_child_samples": {"type": "int", "low": 5, "high": 80, "log": True},
}

# default search spaces by import path; an estimator not listed is fitted with its
# configured params and not tuned unless tuning.space is given
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "sklearn.ensemble.HistGradientBoostingClassifier": _HGB_SPACE,
    "sklearn.ensemble.HistGradientBoostingRegressor": _HGB_SPACE,
    "sklearn.ensemble.RandomForestClassifier": _FOREST_SPACE,
    "sklearn.ensemble.RandomForestRegressor": _FOREST_SPACE,
    "sklearn.ensemble.ExtraTreesClassifier": _FOREST_SPACE,
    "sklearn.ensemble.ExtraTreesRegressor": _FOREST_SPACE,
    "sklearn.linear_model.LogisticRegression": {
        "C": {"type": "float", "low": 1e-3, "high": 100.0, "log": True}
    },
    "sklearn.linear_model.Ridge": {"alpha": {"type": "float", "low": 1e-3, "high": 100.0, "log": True}},
    "lightgbm.LGBMClassifier": _LGBM_SPACE,
    "lightgbm.LGBMRegressor": _LGBM_SPACE,
}

# what makes a library's estimators quiet: without it LightGBM prints dozens of
# "[LightGBM] [Info]" lines per fit (and XGBoost/CatBoost their own), which drown the
# progress bars and would break `--json`. A value the user sets in model.params wins.
QUIET_PARAMS: dict[str, dict[str, Any]] = {
    "lightgbm": {"verbosity": -1},
    "xgboost": {"verbosity": 0},
    "catboost": {"verbose": False},
}

# modules whose estimators split on thresholds, so ordinal codes are as good as one-hot
_TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "lightgbm", "xgboost", "catboost")


def estimator_path(path: str | None, task: str) -> str:
    """The import path used for ``task``: ``path`` or the task's default."""
    if path:
        return path
    return DEFAULT_ESTIMATORS["regression" if task == "regression" else "classification"]


def _suggest(module: str, name: str) -> str:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return ""
    names = [n for n in dir(mod) if n[:1].isupper()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(f'{module}.{c}' for c in close)}?" if close else ""


def resolve_estimator(path: str | None, task: str) -> type[Any]:
    """Import the estimator class named by ``path`` (``None`` = the task's default).

    Args:
        path: ``"package.module.ClassName"``, as written in ``model.estimator``.
        task: ``"classification"`` or ``"regression"``, for the default.

    Returns:
        The class (not an instance).

    Raises:
        ConfigError: the path is malformed, its package is not installed, the class does
            not exist, or it is not an estimator with ``fit`` and ``predict``.
    """
    full = estimator_path(path, task)
    module, _, name = full.rpartition(".")
    if not module or not name:
        raise ConfigError(
            f"model.estimator: {full!r} is not an import path; write it as "
            "'package.module.ClassName', e.g. 'sklearn.ensemble.RandomForestClassifier'"
        )
    try:
        mod = importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        installed = top in {m.name for m in pkgutil.iter_modules()}
        fix = (
            "check the module name in model.estimator"
            if installed
            else f"install it (pip install {top}) or fix model.estimator"
        )
        raise ConfigError(f"model.estimator: cannot import module {module!r} for {full!r}: {fix}") from None
    cls = getattr(mod, name, None)
    if not isinstance(cls, type):
        raise ConfigError(
            f"model.estimator: {module!r} has no class {name!r}{_suggest(module, name)} "
            "(fix model.estimator in pilot.yaml)"
        )
    if not (hasattr(cls, "fit") and hasattr(cls, "predict")):
        raise ConfigError(
            f"model.estimator: {full!r} is not an estimator (it needs fit and predict); "
            "name a scikit-learn compatible class"
        )
    return cls


def make_estimator(path: str | None, task: str, params: dict[str, Any], seed: int) -> Any:
    """An instance with ``params`` (and ``random_state=seed`` when it takes one).

    Raises:
        ConfigError: the class cannot be resolved or rejects a parameter.
    """
    cls = resolve_estimator(path, task)
    try:
        est = cls()
        accepted = est.get_params(deep=False)
        kwargs = dict(params)
        if "random_state" in accepted and "random_state" not in kwargs:
            kwargs["random_state"] = seed
        _refuse_unknown(path, task, kwargs, accepted, "model.params / tuning.space")
        est.set_params(**kwargs)
        quiet = QUIET_PARAMS.get(type(est).__module__.split(".")[0], {})
        quiet = {k: v for k, v in quiet.items() if k not in kwargs}
        return est.set_params(**quiet) if quiet else est
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.params: cannot build {estimator_path(path, task)}: {exc}") from None


def _refuse_unknown(path: str | None, task: str, names: Any, accepted: Any, setting: str) -> None:
    unknown = sorted(set(names) - set(accepted))
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], list(accepted), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"{setting}: {estimator_path(path, task)} has no parameter "
        f"{', '.join(map(repr, unknown))}{hint} (valid ones: {', '.join(sorted(accepted))})"
    )


def check_param_names(path: str | None, task: str, names: Any, setting: str) -> None:
    """Refuse parameter names the estimator does not take, naming the closest valid one.

    Raises:
        ConfigError: a name is not a parameter of the estimator.
    """
    _refuse_unknown(path, task, names, resolve_estimator(path, task)().get_params(deep=False), setting)


def default_space(path: str | None, task: str) -> dict[str, ParamSpec] | None:
    """The built-in search space for the estimator, or ``None`` when there is none."""
    raw = DEFAULT_SPACES.get(estimator_path(path, task))
    return None if raw is None else {k: ParamSpec.model_validate(v) for k, v in raw.items()}


def iteration_param(est: Any) -> str | None:
    """The parameter that counts boosting rounds / trees, if the estimator can warm start.

    Growing that parameter with ``warm_start=True`` continues fitting instead of
    starting over, which is what pruning (intermediate scores) and retraining from a
    parent version rely on. Only ensembles count: ``LogisticRegression`` also has
    ``warm_start`` and ``max_iter``, but there ``max_iter`` bounds a solver, it adds no capacity.
    """
    params = est.get_params(deep=False)
    if "warm_start" not in params or not is_tree_model(est):
        return None
    for name in ("max_iter", "n_estimators"):
        if name in params:
            return name
    return None


def is_iterative(est: Any) -> bool:
    """Whether the estimator can be fitted in stages (ensemble warm start, staged or partial fit)."""
    return (
        iteration_param(est) is not None
        or hasattr(est, "staged_predict")
        or hasattr(est, "partial_fit")
    )


def is_tree_model(est: Any) -> bool:
    """Tree ensembles take ordinal-encoded categoricals; everything else gets one-hot."""
    return type(est).__module__.startswith(_TREE_MODULES)


def supports_native_categories(est: Any) -> bool:
    """HistGradientBoosting splits ordinal-coded columns as categories (``categorical_features``)."""
    return "categorical_features" in est.get_params(deep=False)
