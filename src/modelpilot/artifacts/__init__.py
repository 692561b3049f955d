"""The artifact store: model files, reference profiles, reports and log segments.

``open_artifacts(url)`` picks a backend from :data:`BACKENDS` by the URL's scheme — a
plain path or ``file://`` is a local folder, ``s3://bucket/prefix`` is S3 through s3fs.
Every backend keeps the :class:`ArtifactStore` contract: content-addressed keys,
atomic writes, checksums verified on read, :class:`~modelpilot.errors.ArtifactNotFound`
for any missing key.

Example:
    >>> import tempfile
    >>> store = open_artifacts(tempfile.mkdtemp())
    >>> key = put_json(store, {"rows": 3})
    >>> get_json(store, key)
    {'rows': 3}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelpilot.artifacts._json import get_json, put_json
from modelpilot.artifacts._protocol import ArtifactStore
from modelpilot.artifacts.models import check_model, load_model, load_model_shared, save_model
from modelpilot.errors import ConfigError

Factory = Callable[[str, dict[str, Any]], ArtifactStore]


def _local(url: str, options: dict[str, Any]) -> ArtifactStore:
    from modelpilot.artifacts.local import LocalArtifactStore

    if options:
        raise ConfigError(
            f"artifacts.options {sorted(options)} do not apply to the local folder {url!r}; "
            "remove them or use an s3:// URL"
        )
    return LocalArtifactStore(url.removeprefix("file://"))


def _s3(url: str, options: dict[str, Any]) -> ArtifactStore:
    # Imported on use: s3fs pulls in botocore, which a local-only install never needs.
    from modelpilot.artifacts.s3 import S3ArtifactStore

    return S3ArtifactStore(url, options)


#: Backends by URL scheme ("" is a plain path). Register more by adding a factory here.
BACKENDS: dict[str, Factory] = {"": _local, "file": _local, "s3": _s3}


def open_artifacts(url: str, options: dict[str, Any] | None = None) -> ArtifactStore:
    """Open the artifact store at ``url``.

    Args:
        url: a folder path (created on the first write), ``file:///abs/path`` or
            ``s3://bucket/prefix``.
        options: backend options, e.g. s3fs's ``{"endpoint_url": ..., "key": ...,
            "secret": ...}`` for an S3-compatible server.

    Returns:
        The store; opening does not touch the storage.

    Raises:
        ConfigError: the URL's scheme has no backend, or the options do not fit it.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    try:
        factory = BACKENDS[scheme]
    except KeyError:
        raise ConfigError(
            f"artifacts.url {url!r}: no artifact store for scheme {scheme!r}; use a folder "
            f"path or one of {', '.join(sorted(s + '://' for s in BACKENDS if s))}"
        ) from None
    return factory(url, dict(options or {}))


__all__ = [
    "BACKENDS",
    "ArtifactStore",
    "check_model",
    "get_json",
    "load_model",
    "load_model_shared",
    "open_artifacts",
    "put_json",
    "save_model",
]
