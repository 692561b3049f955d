"""Which columns are features, of which kind, and what the model's input signature is.

Configured lists win; what is not configured is inferred from dtypes:

- numeric: integer, float and bool columns;
- categorical: text (``str``/``object``) and ``category`` columns;
- never features: the target, ``model.time_column``, ``model.id_column``,
  ``model.features.exclude`` and other datetime columns (a raw timestamp is not a
  feature a model can use; derive one in ``data.query`` if you need it).

Segment columns (``model.segments``) are features too unless excluded. When only one of
``features.numeric`` / ``features.categorical`` is configured the other is inferred from
the remaining columns; set it to ``[]`` to use the configured list alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from modelpilot.config import PilotConfig
from modelpilot.data._columns import unknown_column
from modelpilot.errors import DataError

Task = Literal["classification", "regression"]

# a target of integers with at most this many distinct values is a class label
MAX_INTEGER_CLASSES = 20


@dataclass(frozen=True)
class FeatureSpec:
    """The resolved roles of columns; ``types`` maps each feature to its signature type."""

    target: str
    task: Task
    numeric: list[str]
    categorical: list[str]
    time_column: str | None = None
    id_column: str | None = None
    segments: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        """All feature columns, numeric first, in the order the model receives them."""
        return [*self.numeric, *self.categorical]

    @property
    def signature(self) -> list[dict[str, str]]:
        """``[{"name", "type"}]`` with type ``float|int|bool|category|string``.

        The type is the JSON-facing type of the values; how a column is encoded follows
        from ``numeric``/``categorical``.
        """
        return [{"name": c, "type": self.types.get(c, "float")} for c in self.features]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSpec:
        return cls(**raw)


def infer_task(target: pd.Series) -> Task:
    """``classification`` for bool/text/category targets or integers with <= 20 values.

    >>> infer_task(pd.Series([0, 1, 1])), infer_task(pd.Series([0.5, 1.5, 2.5]))
    ('classification', 'regression')
    """
    dtype = target.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "classification"
    if pd.api.types.is_integer_dtype(dtype) and target.nunique() <= MAX_INTEGER_CLASSES:
        return "classification"
    return "regression"


def _signature_type(s: pd.Series, numeric: bool) -> str:
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype) or numeric:
        # a numeric feature holding text is meant to be a number (validation says so)
        return "float"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    return "string"


def _kind(s: pd.Series) -> str | None:
    """"numeric", "categorical" or None (not usable as a feature) from the dtype."""
    if pd.api.types.is_numeric_dtype(s.dtype):  # bool counts as numeric
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(s.dtype) or pd.api.types.is_timedelta64_dtype(s.dtype):
        return None
    return "categorical"


def _check_target(df: pd.DataFrame, target: str, task: Task) -> None:
    y = df[target].dropna()
    if y.empty:
        raise DataError(
            f"target column '{target}' has no values (all {len(df)} are missing): "
            "check data.source / data.query or model.target"
        )
    if task == "classification":
        classes = y.drop_duplicates().head(2).tolist()  # Python scalars for the message
        if len(classes) < 2:
            raise DataError(
                f"target column '{target}' has a single class ({classes[0]!r}) in {len(y)} "
                "rows: a classifier needs at least two classes; check that data.source / "
                "data.query selects the right rows, or set model.task: regression"
            )
    elif not pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype):
        raise DataError(
            f"target column '{target}' holds {y.dtype} values but model.task is regression: "
            "set model.task: classification, or clean the target to numbers"
        )


def resolve_features(df: pd.DataFrame, cfg: PilotConfig) -> FeatureSpec:
    """Resolve target, task and feature columns of ``df`` from ``cfg.model``.

    Args:
        df: the training data.
        cfg: the config; reads ``model.target``, ``task``, ``features``, ``time_column``,
            ``id_column`` and ``segments``.

    Returns:
        The :class:`FeatureSpec`.

    Raises:
        DataError: the data is empty; a configured column is not in the data (with close
            matches); a column is configured twice; no features remain; the target is
            empty, has a single class, or is text for a regression.

    Example::

        >>> cfg = PilotConfig.model_validate({"model": {"name": "m", "target": "y"}})
        >>> df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "y": [0, 1]})
        >>> spec = resolve_features(df, cfg)
        >>> spec.task, spec.numeric, spec.categorical
        ('classification', ['a'], ['b'])
    """
    m = cfg.model
    if len(df) == 0 or len(df.columns) == 0:
        raise DataError(
            "the dataset is empty (0 rows): check data.source / data.query in pilot.yaml"
        )
    columns = [str(c) for c in df.columns]
    named: list[tuple[str, str]] = [(m.target, "model.target")]
    named += [(c, setting) for setting, c in
              (("model.time_column", m.time_column), ("model.id_column", m.id_column)) if c]
    named += [(c, "model.segments") for c in m.segments]
    named += [(c, "model.features.exclude") for c in m.features.exclude]
    named += [(c, "model.features.numeric") for c in m.features.numeric or []]
    named += [(c, "model.features.categorical") for c in m.features.categorical or []]
    for name, setting in named:
        if name not in df.columns:
            raise unknown_column(name, columns, setting)

    task: Task = infer_task(df[m.target]) if m.task == "auto" else m.task
    _check_target(df, m.target, task)

    reserved = {m.target, m.time_column, m.id_column, *m.features.exclude} - {None}
    for setting, listed in (("numeric", m.features.numeric), ("categorical", m.features.categorical)):
        clash = sorted(set(listed or []) & reserved)
        if clash:
            raise DataError(
                f"model.features.{setting} lists {', '.join(clash)}, which is the target, the "
                "time/id column or excluded: remove it from the list"
            )
    both = sorted(set(m.features.numeric or []) & set(m.features.categorical or []))
    if both:
        raise DataError(
            f"column(s) {', '.join(both)} are listed in both model.features.numeric and "
            "model.features.categorical: keep each in one list"
        )

    configured = set(m.features.numeric or []) | set(m.features.categorical or [])
    free = [c for c in df.columns if c not in reserved and c not in configured]
    kinds = {c: _kind(df[c]) for c in free}
    numeric = list(m.features.numeric) if m.features.numeric is not None else [
        c for c in free if kinds[c] == "numeric"]
    categorical = list(m.features.categorical) if m.features.categorical is not None else [
        c for c in free if kinds[c] == "categorical"]
    if not numeric and not categorical:
        raise DataError(
            f"no feature columns left in {', '.join(columns)} after removing the target, "
            "time/id columns and model.features.exclude: add feature columns to the data "
            "or list them in model.features"
        )
    types = {c: _signature_type(df[c], True) for c in numeric}
    types |= {c: _signature_type(df[c], False) for c in categorical}
    return FeatureSpec(
        target=m.target,
        task=task,
        numeric=[str(c) for c in numeric],
        categorical=[str(c) for c in categorical],
        time_column=m.time_column,
        id_column=m.id_column,
        segments=list(m.segments),
        types=types,
    )
