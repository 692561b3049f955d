"""What only the local-folder backend promises: layout, atomic replace, plain paths."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from modelpilot.artifacts import open_artifacts
from modelpilot.artifacts._keys import TEMP_PREFIX
from modelpilot.artifacts.local import LocalArtifactStore
from modelpilot.errors import ArtifactError


def test_folder_is_created_on_first_write(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    store = open_artifacts(str(root))
    assert not root.exists()
    assert store.list("") == []
    assert not store.exists("x")
    store.write_named("x", b"1")
    assert (root / "x").read_bytes() == b"1"


def test_content_key_layout_on_disk(tmp_path: Path) -> None:
    store = open_artifacts(f"file://{tmp_path}")
    assert isinstance(store, LocalArtifactStore)
    assert store.url == str(tmp_path)
    digest = hashlib.sha256(b"abc").hexdigest()
    key = store.put_bytes(b"abc", suffix=".txt")
    path = tmp_path / "sha256" / digest[:2] / f"{digest[2:]}.txt"
    assert path.read_bytes() == b"abc"
    assert store.local_path(key) == str(path)
    assert store.fs_url(key) == str(path)
    assert store.storage_options == {}


def test_replace_is_atomic_for_concurrent_readers(tmp_path: Path) -> None:
    store = open_artifacts(str(tmp_path))
    versions = [b"A" * 2**20, b"B" * 2**20]
    store.write_named("segment.bin", versions[0])
    seen: set[bytes] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(hashlib.sha256(store.read_named("segment.bin")).digest())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            store.write_named("segment.bin", versions[i % 2])
    finally:
        done.set()
        reader.join()
    # A torn write would show up as a third digest.
    assert seen <= {hashlib.sha256(v).digest() for v in versions}
    assert [p.name for p in tmp_path.iterdir()] == ["segment.bin"]


def test_failed_write_leaves_no_partial_or_temp_file(tmp_path: Path) -> None:
    store = open_artifacts(str(tmp_path))
    (tmp_path / "logs" / "taken").mkdir(parents=True)  # a folder where a file should go
    with pytest.raises(ArtifactError, match=r"cannot write artifact 'logs/taken'.*check"):
        store.write_named("logs/taken", b"data")
    assert (tmp_path / "logs" / "taken").is_dir()
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["taken"]


def test_leftover_temp_files_are_invisible(tmp_path: Path) -> None:
    store = open_artifacts(str(tmp_path))
    store.write_named("logs/a.parquet", b"1")
    (tmp_path / "logs" / f"{TEMP_PREFIX}crashed").write_bytes(b"half")
    assert store.list("logs") == ["logs/a.parquet"]
    with pytest.raises(ArtifactError, match="reserved for temporary files"):
        store.write_named(f"logs/{TEMP_PREFIX}x", b"1")


def test_get_file_replaces_an_existing_destination(tmp_path: Path) -> None:
    store = open_artifacts(str(tmp_path / "store"))
    key = store.put_bytes(b"new model")
    dest = tmp_path / "model.skops"
    dest.write_bytes(b"old model")
    assert store.get_file(key, dest).read_bytes() == b"new model"


def test_duckdb_reads_fs_url(tmp_path: Path) -> None:
    store = open_artifacts(str(tmp_path))
    buf = io.BytesIO()
    pd.DataFrame({"id": [1, 2], "p": [0.2, 0.7]}).to_parquet(buf, index=False)
    store.write_named("logs/m/seg.parquet", buf.getvalue())
    rows = duckdb.sql(f"select id, p from read_parquet('{store.fs_url('logs/m/seg.parquet')}')")
    assert rows is not None
    assert rows.fetchall() == [(1, 0.2), (2, 0.7)]
