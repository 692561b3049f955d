"""One artifact store over any fsspec filesystem; backends differ only in how they write.

:class:`FsspecArtifactStore` implements the whole :class:`ArtifactStore` contract on top of
an fsspec filesystem rooted at a folder. A backend subclass chooses the filesystem and
overrides :meth:`_write` / :meth:`_upload` where plain fsspec writes are not atomic (a local
folder needs temp file + ``os.replace``; an S3 PUT or completed multipart upload already is).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

from fsspec import AbstractFileSystem

from modelpilot.artifacts._keys import (
    TEMP_PREFIX,
    check_key,
    check_named,
    check_prefix,
    check_suffix,
    content_key,
    expected_digest,
    file_digest,
    verify,
)
from modelpilot.errors import ArtifactError, ArtifactNotFound


class FsspecArtifactStore:
    """The artifact store contract over ``fs`` rooted at ``root`` (a path ``fs`` understands).

    Args:
        url: the store's URL as users name it (messages quote it).
        fs: the filesystem; it must be safe to call from several threads.
        root: the root folder in ``fs``'s own path form (no protocol, no trailing ``/``).
        options: fsspec options readers need for :meth:`fs_url` (``storage_options``).
    """

    #: Backend failures translated into ArtifactError (subclasses add their client's errors).
    _errors: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    #: Protocol prefixed to paths by :meth:`fs_url`.
    _protocol: ClassVar[str] = ""

    def __init__(self, url: str, fs: AbstractFileSystem, root: str, options: dict[str, Any]):
        self.url = url
        self._fs = fs
        self._root = root.rstrip("/")
        self._options = dict(options)
        self._lock = threading.Lock()
        self._bytes_read = 0
        self._bytes_written = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # ------------------------------------------------------------------ backend hooks

    def _write(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically (the default suits object stores)."""
        self._fs.pipe_file(path, data)

    def _upload(self, src: str, path: str) -> None:
        """Copy the local file ``src`` to ``path`` atomically."""
        self._fs.put_file(src, path)

    # ------------------------------------------------------------------ content-addressed

    def put_bytes(self, data: bytes, *, suffix: str = "") -> str:
        key = content_key(hashlib.sha256(data).hexdigest(), check_suffix(suffix))
        # Same key means same bytes: skip the write unless the object is missing or truncated.
        if self._file_size(key) != len(data):
            with self._writing(key):
                self._write(self._path(key), bytes(data))
            self._count(written=len(data))
        return key

    def get_bytes(self, key: str) -> bytes:
        with self._reading(check_key(key)):
            data: bytes = self._fs.cat_file(self._path(key))
        if expected_digest(key) is not None:
            verify(key, hashlib.sha256(data).hexdigest(), self.url)
        self._count(read=len(data))
        return data

    def put_file(self, path: str | os.PathLike[str], *, suffix: str = "") -> str:
        src = Path(path)
        if not src.is_file():
            raise ArtifactError(f"cannot store {str(src)!r}: it is not a file; pass a file path")
        key = content_key(file_digest(src), check_suffix(suffix))
        size = src.stat().st_size
        if self._file_size(key) != size:
            with self._writing(key):
                self._upload(str(src), self._path(key))
            self._count(written=size)
        return key

    def get_file(self, key: str, dest_path: str | os.PathLike[str]) -> Path:
        check_key(key)
        if self._file_size(key) is None:
            raise self._not_found(key)
        dest = Path(dest_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Download next to the destination, verify, then rename: dest is never partial.
        tmp = dest.with_name(f"{TEMP_PREFIX}{uuid4().hex}")
        try:
            with self._reading(key):
                self._fs.get_file(self._path(key), str(tmp))
            if expected_digest(key) is not None:
                verify(key, file_digest(tmp), self.url)
            size = tmp.stat().st_size
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        self._count(read=size)
        return dest

    # ------------------------------------------------------------------ named keys

    def write_named(self, key: str, data: bytes) -> None:
        with self._writing(check_named(key)):
            self._write(self._path(key), bytes(data))
        self._count(written=len(data))

    def read_named(self, key: str) -> bytes:
        return self.get_bytes(key)

    # ------------------------------------------------------------------ both

    def exists(self, key: str) -> bool:
        return self._file_size(check_key(key)) is not None

    def list(self, prefix: str) -> list[str]:
        folder = check_prefix(prefix)
        with self._reading(folder):
            try:
                found = self._fs.find(self._path(folder) if folder else self._root)
            except FileNotFoundError:
                found = []
        start = len(self._root) + 1
        keys = (path[start:] for path in found if path.startswith(self._root + "/"))
        return sorted(
            key
            for key in keys
            if not key.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)
            and (not folder or key == folder or key.startswith(folder + "/"))
        )

    def delete(self, key: str) -> None:
        # Deleting is idempotent, as on S3.
        with self._writing(check_key(key)), suppress(FileNotFoundError):
            self._fs.rm_file(self._path(key))

    def size_bytes(self, key: str) -> int:
        size = self._file_size(check_key(key))
        if size is None:
            raise self._not_found(key)
        return size

    def local_path(self, key: str) -> str | None:
        check_key(key)
        return None

    def fs_url(self, key: str) -> str:
        return f"{self._protocol}://{self._path(check_key(key))}"

    @property
    def storage_options(self) -> dict[str, Any]:
        return dict(self._options)

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def bytes_written(self) -> int:
        return self._bytes_written

    # ------------------------------------------------------------------ internals

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def _count(self, *, read: int = 0, written: int = 0) -> None:
        with self._lock:
            self._bytes_read += read
            self._bytes_written += written

    def _file_size(self, key: str) -> int | None:
        """The size of the file at ``key``, or ``None`` when there is none (or a folder)."""
        with self._reading(key):
            try:
                info = self._fs.info(self._path(key))
            except FileNotFoundError:
                return None
        return int(info["size"]) if info.get("type") == "file" else None

    def _not_found(self, key: str) -> ArtifactNotFound:
        folder = key.rsplit("/", 1)[0] if "/" in key else ""
        return ArtifactNotFound(
            f"no artifact {key!r} in {self.url}: check the key (store.list({folder!r}) shows "
            "what exists there) and that the store URL is the one it was written to"
        )

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        try:
            yield
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._not_found(key) from exc
        except self._errors as exc:
            raise ArtifactError(
                f"cannot read artifact {key!r} from {self.url}: {exc}; check that the store is "
                "reachable and its credentials allow reading"
            ) from exc

    @contextmanager
    def _writing(self, key: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise ArtifactError(
                f"cannot write artifact {key!r} to {self.url}: {exc}; check that the folder or "
                "bucket exists and its credentials allow writing"
            ) from exc
