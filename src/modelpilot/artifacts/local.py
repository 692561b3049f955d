"""A local folder as artifact store (the embedded default)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING
from uuid import uuid4

from fsspec.implementations.local import LocalFileSystem

from modelpilot.artifacts._fsspec import FsspecArtifactStore
from modelpilot.artifacts._keys import TEMP_PREFIX, check_key


class LocalArtifactStore(FsspecArtifactStore):
    """Artifacts as files under ``root`` (created on the first write).

    Every write goes to a temporary file in the destination's own folder, is flushed to
    disk, then renamed over the destination with ``os.replace`` — atomic on POSIX and
    Windows, so a crash leaves the old file or the new one, never a torn one.

    Example:
        >>> import tempfile
        >>> store = LocalArtifactStore(tempfile.mkdtemp())
        >>> key = store.put_bytes(b"hello", suffix=".txt")
        >>> key.startswith("sha256/2c/") and store.get_bytes(key)
        b'hello'
    """

    _protocol = "file"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        folder = Path(root).expanduser().resolve()
        fs = LocalFileSystem()
        super().__init__(str(folder), fs, fs._strip_protocol(str(folder)), {})

    def _write(self, path: str, data: bytes) -> None:
        _replace_atomically(Path(path), lambda out: out.write(data))

    def _upload(self, src: str, path: str) -> None:
        def copy(out: IO[bytes]) -> None:
            with open(src, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)

        _replace_atomically(Path(path), copy)

    def local_path(self, key: str) -> str | None:
        return self._path(check_key(key))

    def fs_url(self, key: str) -> str:
        # A plain path: DuckDB, pyarrow and pandas all open it without options.
        return self._path(check_key(key))


def _replace_atomically(target: Path, fill: Callable[[IO[bytes]], object]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target so os.replace is a rename within one filesystem; a unique
    # name so concurrent writers of the same key never share a temp file.
    tmp = target.with_name(f"{TEMP_PREFIX}{uuid4().hex}")
    try:
        with open(tmp, "xb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


if TYPE_CHECKING:
    from modelpilot.artifacts._protocol import ArtifactStore

    _: ArtifactStore = LocalArtifactStore("")
