"""Amazon S3 (or any S3-compatible server) as artifact store, through s3fs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import s3fs
from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

from modelpilot.artifacts._fsspec import FsspecArtifactStore
from modelpilot.errors import ConfigError


class S3ArtifactStore(FsspecArtifactStore):
    """Artifacts as objects under ``s3://bucket/prefix``.

    ``options`` go to :class:`s3fs.S3FileSystem` unchanged, e.g. ``{"endpoint_url":
    "http://127.0.0.1:9000", "key": ..., "secret": ..., "client_kwargs": {"region_name":
    "us-east-1"}}``; without ``key``/``secret`` the usual AWS credential chain applies.
    The same options are :attr:`storage_options` for pandas/pyarrow reads of :meth:`fs_url`.

    Writes need no temp file: an S3 PUT is atomic, and s3fs sends files larger than its
    chunk size as a multipart upload, which becomes visible only when it completes.
    """

    _errors = (OSError, BotoCoreError)
    _protocol = "s3"

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        location = url.split("://", 1)[-1].strip("/")
        bucket = location.split("/", 1)[0]
        if not bucket:
            raise ConfigError(
                f"artifacts.url {url!r} names no bucket; write it as s3://bucket or "
                "s3://bucket/prefix"
            )
        opts = dict(options or {})
        try:
            # Listings are never cached: another process (a server replica, the controller)
            # may have written a key since this one last looked.
            fs = s3fs.S3FileSystem(**{**opts, "use_listings_cache": False})
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"artifacts.options for {url!r} are not valid s3fs options: {exc}; see "
                "https://s3fs.readthedocs.io (e.g. endpoint_url, key, secret, client_kwargs)"
            ) from exc
        super().__init__(f"s3://{location}", fs, location, opts)


if TYPE_CHECKING:
    from modelpilot.artifacts._protocol import ArtifactStore

    _: ArtifactStore = S3ArtifactStore("s3://bucket")
