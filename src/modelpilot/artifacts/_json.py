"""JSON documents (reference profiles, reports) as content-addressed artifacts."""

from __future__ import annotations

from typing import Any

import orjson

from modelpilot.artifacts._protocol import ArtifactStore
from modelpilot.errors import ArtifactError

# Sorted keys make equal documents equal bytes, so they share one content key.
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def put_json(store: ArtifactStore, obj: Any) -> str:
    """Store ``obj`` as JSON; return its content key (ending in ``.json``).

    NumPy arrays and scalars are written as JSON lists and numbers; NaN becomes ``null``.

    Raises:
        ArtifactError: ``obj`` holds something JSON cannot represent.
    """
    try:
        data = orjson.dumps(obj, option=_OPTIONS)
    except TypeError as exc:
        raise ArtifactError(
            f"cannot store the object as JSON: {exc}; convert it to dicts, lists, strings, "
            "numbers, booleans, None, datetimes or NumPy values first"
        ) from exc
    return store.put_bytes(data, suffix=".json")


def get_json(store: ArtifactStore, key: str) -> Any:
    """The JSON document under ``key``.

    Raises:
        ArtifactNotFound: no such key.
        ArtifactError: the artifact is corrupt or not JSON.
    """
    data = store.get_bytes(key)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArtifactError(
            f"artifact {key!r} in {store.url} is not a JSON document ({exc}); pass the key "
            "that put_json() returned"
        ) from exc
