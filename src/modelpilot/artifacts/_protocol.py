"""The artifact store contract."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ArtifactStore(Protocol):
    """Immutable blobs (models, reference profiles, reports) and named files (log segments).

    Two kinds of keys share one namespace of relative POSIX paths:

    * content-addressed keys ``sha256/<2 hex>/<62 hex><suffix>`` made by :meth:`put_bytes`
      and :meth:`put_file`. Writing the same bytes twice returns the same key and does not
      rewrite them; every read re-hashes the content and raises :class:`ArtifactError`
      ("checksum mismatch") when it no longer matches its key.
    * named keys written by :meth:`write_named` (e.g. prediction-log segments
      ``logs/<model>/predictions/<date>/<uuid>.parquet``); a rewrite replaces the content.

    Contract every backend keeps (checked by :mod:`modelpilot.testing.artifact_suite`):

    * Writes are atomic: a reader sees the old content or the new one, never a part.
    * A missing key raises :class:`ArtifactNotFound` naming the key, whatever the backend
      (a missing file on disk and a missing S3 object alike). ``delete`` of a missing key
      is a no-op.
    * Keys that are empty, absolute, contain ``..``/``.``/empty segments or backslashes
      raise :class:`ArtifactError` explaining the allowed form; so do named writes under
      the reserved ``sha256/`` folder.
    * Any other backend failure (permissions, network) raises :class:`ArtifactError`.
    * Methods are thread-safe; ``bytes_read``/``bytes_written`` count the payload bytes
      that went through this instance (skipped idempotent writes count nothing).
    """

    url: str

    def put_bytes(self, data: bytes, *, suffix: str = "") -> str:
        """Store ``data`` under its content key (``suffix`` such as ``".json"`` appended)."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The bytes under ``key``, checksum-verified when content-addressed."""
        ...

    def put_file(self, path: str | os.PathLike[str], *, suffix: str = "") -> str:
        """Store a local file under its content key without loading it into memory."""
        ...

    def get_file(self, key: str, dest_path: str | os.PathLike[str]) -> Path:
        """Copy ``key`` to ``dest_path`` atomically (verified first); return the path."""
        ...

    def write_named(self, key: str, data: bytes) -> None:
        """Write (or replace) ``data`` under a caller-chosen key, atomically."""
        ...

    def read_named(self, key: str) -> bytes:
        """The bytes under a named key (content keys are verified here too)."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[str]:
        """Sorted keys in the folder ``prefix`` and below (``""`` lists everything)."""
        ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> str | None:
        """A filesystem path to ``key`` when the store is a local folder, else ``None``."""
        ...

    def fs_url(self, key: str) -> str:
        """A URL (or local path) that pandas, pyarrow and DuckDB can open with
        :attr:`storage_options`."""
        ...

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec options for reading :meth:`fs_url` (e.g. ``pandas.read_parquet``)."""
        ...

    def size_bytes(self, key: str) -> int: ...

    @property
    def bytes_read(self) -> int: ...

    @property
    def bytes_written(self) -> int: ...
