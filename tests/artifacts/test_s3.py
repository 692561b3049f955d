"""What only the S3 backend promises, and the moto helper other modules' tests reuse."""

from __future__ import annotations

import io

import boto3
import duckdb
import fsspec
import pandas as pd
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from modelpilot.artifacts import open_artifacts
from modelpilot.artifacts.s3 import S3ArtifactStore
from modelpilot.errors import ArtifactError, ArtifactNotFound, ConfigError
from modelpilot.testing.s3 import S3Server, moto_s3

pytestmark = pytest.mark.s3


def test_urls_and_options(s3_bucket: S3Server) -> None:
    store = open_artifacts(s3_bucket.url("team/artifacts/"), s3_bucket.options)
    assert isinstance(store, S3ArtifactStore)
    assert store.url == f"s3://{s3_bucket.bucket}/team/artifacts"
    key = store.put_bytes(b"x")
    assert store.local_path(key) is None
    assert store.fs_url(key) == f"s3://{s3_bucket.bucket}/team/artifacts/{key}"
    assert store.storage_options == s3_bucket.options
    store.storage_options["key"] = "changed"  # a copy: the store keeps its own
    assert store.storage_options == s3_bucket.options


def test_objects_land_under_the_prefix(s3_bucket: S3Server) -> None:
    store = open_artifacts(s3_bucket.url("p"), s3_bucket.options)
    key = store.put_bytes(b"payload", suffix=".json")
    store.write_named("logs/a.parquet", b"seg")
    client = boto3.client(
        "s3",
        endpoint_url=s3_bucket.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    listed = client.list_objects_v2(Bucket=s3_bucket.bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted([f"p/{key}", "p/logs/a.parquet"])
    body = client.get_object(Bucket=s3_bucket.bucket, Key=f"p/{key}")["Body"].read()
    assert body == b"payload"
    client.close()


def test_a_second_instance_sees_writes_at_once(s3_bucket: S3Server) -> None:
    writer = open_artifacts(s3_bucket.url("shared"), s3_bucket.options)
    reader = open_artifacts(s3_bucket.url("shared"), s3_bucket.options)
    assert reader.list("logs") == []
    assert not reader.exists("logs/1.parquet")
    writer.write_named("logs/1.parquet", b"1")
    assert reader.list("logs") == ["logs/1.parquet"]
    assert reader.exists("logs/1.parquet")
    writer.delete("logs/1.parquet")
    assert reader.list("logs") == []


def test_missing_bucket(s3_server: S3Server) -> None:
    store = open_artifacts("s3://no-such-bucket/x", s3_server.options)
    with pytest.raises(ArtifactNotFound, match="no artifact 'k' in s3://no-such-bucket/x"):
        store.get_bytes("k")
    with pytest.raises(ArtifactError, match=r"cannot write artifact 'k'.*bucket does not exist"):
        store.write_named("k", b"1")
    assert store.list("") == []


def test_url_without_bucket_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="names no bucket; write it as s3://bucket"):
        open_artifacts("s3://")


def test_duckdb_reads_fs_url_through_fsspec(s3_bucket: S3Server) -> None:
    store = open_artifacts(s3_bucket.url("p"), s3_bucket.options)
    buf = io.BytesIO()
    pd.DataFrame({"id": [1, 2]}).to_parquet(buf, index=False)
    store.write_named("logs/seg.parquet", buf.getvalue())
    con = duckdb.connect()
    con.register_filesystem(fsspec.filesystem("s3", **store.storage_options))
    url = store.fs_url("logs/seg.parquet")
    assert con.sql(f"select id from read_parquet('{url}')").fetchall() == [(1,), (2,)]
    con.close()


def test_moto_helper_buckets_are_separate_and_server_stops() -> None:
    with moto_s3(bucket="helper-a") as s3:
        assert s3.endpoint_url.startswith("http://127.0.0.1:")
        assert s3.url() == "s3://helper-a" and s3.url("/x/") == "s3://helper-a/x"
        other = s3.with_bucket("helper-b")
        assert (other.endpoint_url, other.bucket) == (s3.endpoint_url, "helper-b")
        open_artifacts(s3.url(), s3.options).write_named("only-in-a", b"1")
        assert open_artifacts(other.url(), other.options).list("") == []
        fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.options)
        assert fs.cat_file("helper-a/only-in-a") == b"1"
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(EndpointConnectionError):
        client.list_buckets()
    client.close()
