"""What a label may be: the target's type and classes, checked at the door and on reading.

A label travels as a string through the prediction log and is compared, as a string, with
the logged prediction (``str(class)``). So a label is only useful when it is exactly one of
the model's classes (classification) or a finite number (regression); anything else —
``1.0``, ``true`` or ``"yes"`` for a 0/1 target, ``7``, ``NaN`` — would be counted as a
wrong prediction at best and stop a metric computation at worst.

:meth:`LabelDomain.parse` is the door: the feedback endpoint refuses a request holding any
such label with a 422 that names the ids and the expected values. :meth:`LabelDomain.usable`
is the reading side's guard for rows already logged (by an older server, or a writer used
directly): monitoring treats those rows as unlabelled instead of failing.

JSON types must match the class's type: an integer class takes JSON integers only (``1``,
never ``1.0`` or ``true``), a boolean class ``true``/``false``, a string class strings, a
float class any number equal to it.

Example::

    >>> domain = LabelDomain("classification", (0, 1))
    >>> domain.parse(["a", "b"], [1, 0])
    ['1', '0']
    >>> domain.parse(["a"], [1.0])
    Traceback (most recent call last):
    ...
    modelpilot.errors.RequestError: labels of ids ['a'] (values [1.0]) are not classes of the model: expected one of [0, 1] as JSON integers
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import RequestError

_SHOW = 5
MAX_LABEL_LENGTH = 256


def _kind(value: Any) -> str | None:
    """The JSON kind of a decoded value (bool before int: ``True`` is an int in Python)."""
    t = type(value)
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(t)


_TYPE_WORDS = {"bool": "JSON booleans", "int": "JSON integers", "float": "JSON numbers",
               "str": "JSON strings"}


@dataclass(frozen=True, slots=True)
class LabelDomain:
    """The labels a model accepts.

    Args:
        task: "classification" or "regression".
        classes: the classes (JSON values, in the model's order); None when unknown.
    """

    task: str
    classes: tuple[Any, ...] | None = None

    @classmethod
    def of(cls, record: Any) -> LabelDomain:
        """The domain of a model version record (``task`` and ``classes``)."""
        classes = getattr(record, "classes", None)
        return cls(str(record.task), None if classes is None else tuple(classes))

    def union(self, other: LabelDomain) -> LabelDomain:
        """Labels valid for either (a champion and its challenger may differ in classes)."""
        if self.task != other.task or self.classes is None or other.classes is None:
            return self
        extra = tuple(c for c in other.classes if c not in self.classes)
        return LabelDomain(self.task, self.classes + extra) if extra else self

    # ------------------------------------------------------------------ the door

    def _lookup(self) -> dict[tuple[str, Any], str]:
        """(JSON kind, value) -> the logged string, for every accepted label."""
        table: dict[tuple[str, Any], str] = {}
        for c in self.classes or ():
            kind = _kind(c)
            if kind is None:
                continue
            table[(kind, c)] = str(c)
            if kind == "float" and math.isfinite(c) and float(c).is_integer():
                table[("int", int(c))] = str(c)  # 1 for a 1.0 class: the same number
        return table

    def expected(self) -> str:
        """Words for the accepted labels (used in error messages)."""
        if self.task == "regression":
            return "finite JSON numbers"
        if not self.classes:
            return "JSON strings, integers or booleans"
        kinds = sorted({_kind(c) or "str" for c in self.classes})
        words = " or ".join(_TYPE_WORDS[k] for k in kinds)
        return f"one of {list(self.classes)} as {words}"

    def parse(self, ids: Sequence[str], raw: Sequence[Any]) -> list[str]:
        """Validate one label per id; returns the labels as the log stores them.

        Raises:
            RequestError: some labels are not valid; the message names their ids, the
                values received and the values expected (HTTP 422).
        """
        out: list[str] = []
        bad: list[int] = []
        if self.task == "regression":
            for i, v in enumerate(raw):
                if _kind(v) in ("int", "float") and math.isfinite(v):
                    out.append(str(v))
                else:
                    bad.append(i)
        elif self.classes:
            table = self._lookup()
            for i, v in enumerate(raw):
                kind = _kind(v)
                # NaN never equals a class (and is not hashable as one)
                ok = kind is not None and not (kind == "float" and math.isnan(v))
                label = table.get((kind, v)) if ok and kind is not None else None
                if label is None:
                    bad.append(i)
                else:
                    out.append(label)
        else:
            for i, v in enumerate(raw):
                if _kind(v) in ("str", "int", "bool") and len(str(v)) <= MAX_LABEL_LENGTH:
                    out.append(str(v))
                else:
                    bad.append(i)
        if bad:
            what = "finite numbers" if self.task == "regression" else "classes of the model"
            raise RequestError(
                f"labels of ids {[ids[i] for i in bad[:_SHOW]]} (values "
                f"{[_short(raw[i]) for i in bad[:_SHOW]]}) are not {what}: expected "
                f"{self.expected()}"
                + (f" ({len(bad)} bad labels in all)" if len(bad) > _SHOW else "")
            )
        return out

    # ------------------------------------------------------------------ the reading side

    def usable(self, labels: Iterable[Any]) -> np.ndarray:
        """A boolean mask: which logged labels (strings, or null) this domain can use."""
        series = pd.Series(list(labels) if not isinstance(labels, pd.Series) else labels,
                           dtype=object)
        present = series.notna().to_numpy()
        if self.task == "regression":
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            return np.asarray(present & np.isfinite(values))
        if not self.classes:
            return np.asarray(present)
        allowed = {str(c) for c in self.classes}
        return np.asarray(present & series.astype(str).isin(allowed).to_numpy())


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 40 else text[:37] + "..."
