"""Signature-driven request validation: raw JSON bytes → one NumPy column per feature.

The lean path of the server. A request body is parsed once with orjson, each feature
becomes one NumPy column (``float64`` for numeric features, ``object`` for categorical
ones), and the model gets ONE DataFrame built from that column dict — no per-row pandas
work. Validation is a handful of C-level set operations on the happy path; the slow,
precise diagnosis (which field, which instance) runs only when something is wrong.

Rules (the model's signature, ``[{"name", "type"}]``, is the contract):

* every instance is an object holding exactly the signature's fields — a missing or an
  extra field is a 422 naming the fields and the instance indices;
* ``float``/``int``/``bool`` features take JSON numbers (booleans too for ``bool``) or
  ``null`` (a missing value the pipeline's imputer handles);
* ``category``/``string`` features take strings, integers, booleans or ``null``;
* ``NaN`` and ``Infinity`` are not JSON; a body that only parses with them (Python's
  ``json`` accepts them) is a 422 naming the fields, not a 400.

Example::

    >>> sig = RequestSchema([{"name": "age", "type": "float"}, {"name": "plan", "type": "category"}])
    >>> parsed = sig.parse(b'{"instances": [{"age": 31, "plan": "pro"}]}', max_instances=10)
    >>> parsed.n, parsed.columns["age"].dtype.name, parsed.ids
    (1, 'float64', None)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelpilot.errors import RequestError

NUMERIC_TYPES = frozenset({"float", "int", "number", "bool"})
_NONE = type(None)
# exact types (bool is not an int here: `type(True) is bool`)
_NUMERIC_OK = frozenset({int, float, _NONE})
_BOOL_OK = frozenset({bool, int, float, _NONE})
_CATEGORY_OK = frozenset({str, int, bool, _NONE})
_MISSING = object()
_SHOW = 5  # how many offending instance indices an error message quotes
MAX_ID_LENGTH = 256


class MalformedRequest(RequestError):
    """The body is not JSON, or not the JSON object the endpoint expects (HTTP 400)."""

    status_code = 400


class PayloadTooLarge(RequestError):
    """The body is larger than ``serving.max_body_bytes`` (HTTP 413)."""

    status_code = 413


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A validated predict request: ``n`` instances as one column per feature."""

    n: int
    columns: dict[str, np.ndarray]
    ids: list[str] | None

    def frame(self) -> pd.DataFrame:
        """The one DataFrame the model sees (columns in signature order)."""
        return pd.DataFrame(self.columns, copy=False)


def loads(body: bytes) -> Any:
    """Parse a JSON body; ``NaN``/``Infinity`` parse (so validation can name them).

    Raises:
        MalformedRequest: the body is empty or not JSON.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson is strict; Python's json accepts NaN/Infinity/1e400. Only on this error
        # path do we pay for a second parse, so that a non-finite value becomes a 422
        # that names the field rather than a vague 400.
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            doc = _MISSING
        if doc is not _MISSING:
            _check_carriable(doc)
            return doc
        if not body.strip():
            raise MalformedRequest("the request body is empty: send a JSON object") from None
        raise MalformedRequest(
            f"the request body is not valid JSON ({exc}): send a JSON object such as "
            '{"instances": [{"feature": value}]}'
        ) from None


def _check_carriable(doc: Any) -> None:
    """Refuse what Python's ``json`` accepts but orjson (and the log) cannot carry.

    ``orjson.dumps`` fails on exactly those values: lone UTF-16 surrogates (``"\\ud800"``),
    integers beyond 64 bits and nesting deeper than a few hundred levels. NaN and Infinity
    pass here; validation names them later.
    """
    try:
        orjson.dumps(doc)
    except orjson.JSONEncodeError as exc:
        raise MalformedRequest(
            f"the request body holds a value this API cannot carry ({exc}): send valid UTF-8 "
            "text without lone surrogates, integers within 64 bits and shallow JSON"
        ) from None


def parse_ids(raw: Any, n: int, field: str = "ids") -> list[str] | None:
    """Validate caller-supplied request ids (strings or integers, one per instance)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise RequestError(f"'{field}' must be a list of strings, got {type(raw).__name__}")
    if len(raw) != n:
        raise RequestError(
            f"'{field}' has {len(raw)} entries but there are {n} instances: "
            "send one id per instance, or omit 'ids' to have them generated"
        )
    kinds = set(map(type, raw))
    if not kinds <= {str, int}:
        bad = [i for i, v in enumerate(raw) if type(v) not in (str, int)][:_SHOW]
        raise RequestError(f"'{field}' must hold strings; entries {bad} are not")
    ids = raw if kinds == {str} else [str(v) for v in raw]
    if max(map(len, ids), default=0) > MAX_ID_LENGTH:
        raise RequestError(f"'{field}' entries must be at most {MAX_ID_LENGTH} characters long")
    return ids


class RequestSchema:
    """Validates predict bodies against a model version's signature.

    Thread-safe and immutable after construction; built once per loaded model version.
    """

    def __init__(self, signature: list[dict[str, Any]]) -> None:
        self.names: tuple[str, ...] = tuple(str(f["name"]) for f in signature)
        self.types: tuple[str, ...] = tuple(str(f.get("type", "float")) for f in signature)
        self.numeric: frozenset[str] = frozenset(
            n for n, t in zip(self.names, self.types, strict=True) if t in NUMERIC_TYPES
        )
        self._allowed = {
            n: (_BOOL_OK if t == "bool" else _NUMERIC_OK if t in NUMERIC_TYPES else _CATEGORY_OK)
            for n, t in zip(self.names, self.types, strict=True)
        }
        self._name_set = frozenset(self.names)

    def parse(self, body: bytes, *, max_instances: int) -> ParsedRequest:
        """Parse and validate a ``{"instances": [...], "ids": [...]?}`` body.

        Args:
            body: the raw request body.
            max_instances: the most instances one request may hold.

        Returns:
            The request as one NumPy column per feature, plus the caller's ids.

        Raises:
            MalformedRequest: not JSON, or not an object with an ``instances`` list (400).
            RequestError: missing/extra/wrongly typed fields, NaN/Infinity, bad ids (422).
        """
        doc = loads(body)
        if not isinstance(doc, dict):
            raise MalformedRequest(
                f"the body must be a JSON object with an 'instances' list, got {type(doc).__name__}"
            )
        extra_keys = doc.keys() - {"instances", "ids"}
        if extra_keys:
            raise RequestError(
                f"unknown top-level field(s) {sorted(extra_keys)}: a predict body holds only "
                "'instances' and optionally 'ids'"
            )
        instances = doc.get("instances")
        if not isinstance(instances, list):
            raise MalformedRequest(
                "the body needs 'instances': a list of objects, one per row, "
                'e.g. {"instances": [{"age": 31}]}'
            )
        n = len(instances)
        if n == 0:
            raise RequestError("'instances' is empty: send at least one instance")
        if n > max_instances:
            raise RequestError(
                f"{n} instances in one request is more than serving.max_instances={max_instances}: "
                "split the request or raise the setting"
            )
        if not all(type(i) is dict for i in instances):
            bad = [i for i, v in enumerate(instances) if type(v) is not dict][:_SHOW]
            raise RequestError(f"every instance must be a JSON object; instances {bad} are not")
        ids = parse_ids(doc.get("ids"), n)
        return ParsedRequest(n=n, columns=self.columns(instances), ids=ids)

    def columns(self, instances: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """One validated NumPy column per feature from a list of instance dicts."""
        width = len(self.names)
        raw: dict[str, list[Any]] = {}
        for name in self.names:
            raw[name] = [inst.get(name, _MISSING) for inst in instances]
        missing = [name for name, col in raw.items() if _MISSING in col]
        if missing or any(len(inst) != width for inst in instances):
            self._raise_fields(instances)
        out: dict[str, np.ndarray] = {}
        bad_types: dict[str, list[int]] = {}
        non_finite: dict[str, list[int]] = {}
        for name, col in raw.items():
            allowed = self._allowed[name]
            if not set(map(type, col)) <= allowed:
                bad_types[name] = [i for i, v in enumerate(col) if type(v) not in allowed]
                continue
            if name in self.numeric:
                arr = np.array(col, dtype=np.float64)
                bad = np.flatnonzero(~np.isfinite(arr))
                if bad.size:
                    # NaN here is either a JSON null (allowed: a missing value) or a
                    # NaN/Infinity literal (refused); only the non-finite rows are inspected
                    refused = [int(i) for i in bad if col[i] is not None]
                    if refused:
                        non_finite[name] = refused
                out[name] = arr
            else:
                arr = np.empty(len(col), dtype=object)
                arr[:] = col
                out[name] = arr
        if bad_types or non_finite:
            parts = [
                f"'{k}' ({self._expect(k)}) at instances {v[:_SHOW]}" for k, v in bad_types.items()
            ]
            parts += [f"'{k}' is NaN or infinite at instances {v[:_SHOW]}" for k, v in non_finite.items()]
            raise RequestError(
                "wrong values: " + "; ".join(parts) + ". Send finite JSON numbers for numeric "
                "features, strings for categorical ones, and null for a missing value"
            )
        return out

    def _expect(self, name: str) -> str:
        kind = self.types[self.names.index(name)]
        what = "a string" if name not in self.numeric else "a number"
        return f"type {kind}: expected {what} or null"

    def _raise_fields(self, instances: list[dict[str, Any]]) -> None:
        """Name the missing and extra fields and where they occur (error path only)."""
        missing: dict[str, list[int]] = {}
        extra: dict[str, list[int]] = {}
        for i, inst in enumerate(instances):
            keys = inst.keys()
            for name in self._name_set - keys:
                missing.setdefault(name, []).append(i)
            for name in keys - self._name_set:
                extra.setdefault(str(name), []).append(i)
        parts = [f"missing field '{k}' at instances {v[:_SHOW]}" for k, v in sorted(missing.items())]
        parts += [f"unknown field '{k}' at instances {v[:_SHOW]}" for k, v in sorted(extra.items())]
        raise RequestError(
            "; ".join(parts) + f". The model expects exactly these fields: {list(self.names)}"
        )


def new_ids(n: int) -> list[str]:
    """n random 128-bit hex request ids (uuid4().hex's shape, from one urandom call)."""
    raw = os.urandom(16 * n).hex()
    return [raw[i : i + 32] for i in range(0, 32 * n, 32)]


def finite_or_none(value: Any) -> bool:
    """True for a finite number or None (used for optional rewards)."""
    return value is None or (type(value) in (int, float) and math.isfinite(value))
