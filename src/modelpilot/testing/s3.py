"""A real S3 server for tests: moto's S3 in a thread of this process.

Example::

    from modelpilot.testing.s3 import moto_s3

    with moto_s3(bucket="test") as s3:
        store = open_artifacts(s3.url("artifacts"), s3.options)
        other = s3.with_bucket("second")          # another bucket on the same server

``s3.options`` are s3fs storage options (endpoint, fake credentials, region), usable
for ``open_artifacts``, ``pandas.read_parquet(..., storage_options=s3.options)`` and
``fsspec.filesystem("s3", **s3.options)``. Needs the ``test`` extra (``moto[server]``,
``boto3``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

_CREDENTIALS = {"key": "testing", "secret": "testing"}
_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    """A running S3 endpoint and one bucket on it (created, empty at first)."""

    endpoint_url: str
    bucket: str
    options: dict[str, Any] = field(repr=False)

    def url(self, prefix: str = "") -> str:
        """``s3://<bucket>/<prefix>`` (``s3://<bucket>`` when ``prefix`` is empty)."""
        prefix = prefix.strip("/")
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"

    def with_bucket(self, bucket: str) -> S3Server:
        """Create ``bucket`` on the same server (no-op if it exists) and describe it."""
        _create_bucket(self.endpoint_url, bucket)
        return replace(self, bucket=bucket)


@contextmanager
def moto_s3(bucket: str = "test") -> Iterator[S3Server]:
    """Start moto's S3 server on a free local port, create ``bucket``, stop it on exit.

    moto keeps its buckets in process-wide memory, so two servers started in one process
    see the same buckets; give each test its own bucket (:meth:`S3Server.with_bucket`).

    Raises:
        ModuleNotFoundError: moto or boto3 is not installed (``pip install 'modelpilot[test]'``).
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ModuleNotFoundError(
            "moto_s3 needs moto's server: pip install 'modelpilot[test]' (moto[server], boto3)"
        ) from exc
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        options = {
            "endpoint_url": endpoint,
            **_CREDENTIALS,
            "client_kwargs": {"region_name": _REGION},
        }
        yield S3Server(endpoint, bucket, options).with_bucket(bucket)
    finally:
        server.stop()


def _create_bucket(endpoint_url: str, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=_CREDENTIALS["key"],
        aws_secret_access_key=_CREDENTIALS["secret"],
        region_name=_REGION,
    )
    try:
        client.create_bucket(Bucket=bucket)
    finally:
        client.close()
