"""The conformance suite every artifact store backend passes.

Subclass :class:`ArtifactStoreSuite` in a test module and give it a ``store`` fixture that
returns a fresh, empty store; pytest then runs every check against that backend::

    class TestLocalStore(ArtifactStoreSuite):
        @pytest.fixture
        def store(self, tmp_path):
            return open_artifacts(str(tmp_path / "artifacts"))

The suite only uses the public contract plus fsspec (through ``fs_url`` and
``storage_options``) to damage stored bytes the way a disk or a stray writer would.
Needs pytest, pyarrow and pandas.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelpilot.artifacts import ArtifactStore, get_json, put_json
from modelpilot.errors import ArtifactError, ArtifactNotFound

BAD_KEYS = ["", "/etc/passwd", "../outside", "a/../../b", "a/..", "a\\b", "a//b", "./a", "a/"]

_MISSING_READS: dict[str, Callable[[ArtifactStore, str, Path], object]] = {
    "get_bytes": lambda s, k, _: s.get_bytes(k),
    "read_named": lambda s, k, _: s.read_named(k),
    "size_bytes": lambda s, k, _: s.size_bytes(k),
    "get_file": lambda s, k, tmp: s.get_file(k, tmp / "out.bin"),
}
_KEYED_CALLS: dict[str, Callable[[ArtifactStore, str], object]] = {
    "get_bytes": lambda s, k: s.get_bytes(k),
    "write_named": lambda s, k: s.write_named(k, b"x"),
    "read_named": lambda s, k: s.read_named(k),
    "exists": lambda s, k: s.exists(k),
    "delete": lambda s, k: s.delete(k),
    "size_bytes": lambda s, k: s.size_bytes(k),
    "fs_url": lambda s, k: s.fs_url(k),
    "local_path": lambda s, k: s.local_path(k),
}


def overwrite_raw(store: ArtifactStore, key: str, data: bytes) -> None:
    """Replace the stored bytes behind the store's back (a corrupt disk, a stray writer)."""
    with fsspec.open(store.fs_url(key), "wb", **store.storage_options) as fh:
        fh.write(data)


class ArtifactStoreSuite:
    """Checks of the :class:`ArtifactStore` contract; subclasses provide ``store``."""

    @pytest.fixture
    def store(self) -> ArtifactStore:  # pragma: no cover - always overridden
        raise NotImplementedError("define a `store` fixture returning a fresh, empty store")

    def test_conforms_to_protocol(self, store: ArtifactStore) -> None:
        assert isinstance(store, ArtifactStore)

    # -- content-addressed ---------------------------------------------------------------

    def test_put_bytes_returns_content_key(self, store: ArtifactStore) -> None:
        data = b"model bytes"
        digest = hashlib.sha256(data).hexdigest()
        key = store.put_bytes(data, suffix=".bin")
        assert key == f"sha256/{digest[:2]}/{digest[2:]}.bin"
        assert store.get_bytes(key) == data
        assert store.exists(key)
        assert store.size_bytes(key) == len(data)

    def test_put_bytes_is_idempotent(self, store: ArtifactStore) -> None:
        first = store.put_bytes(b"same")
        written = store.bytes_written
        assert store.put_bytes(b"same") == first
        assert store.bytes_written == written  # no rewrite
        assert store.list("") == [first]
        assert store.put_bytes(b"other") != first

    def test_empty_payload(self, store: ArtifactStore) -> None:
        key = store.put_bytes(b"")
        assert store.get_bytes(key) == b""
        store.write_named("empty/file", b"")
        assert store.read_named("empty/file") == b""

    @pytest.mark.parametrize("suffix", ["json", "/x", ".a/b", "..", ". json"])
    def test_bad_suffix_is_refused(self, store: ArtifactStore, suffix: str) -> None:
        with pytest.raises(ArtifactError, match="invalid artifact suffix"):
            store.put_bytes(b"x", suffix=suffix)

    @pytest.mark.parametrize("damage", ["changed", "truncated"])
    def test_corruption_is_detected(
        self, store: ArtifactStore, tmp_path: Path, damage: str
    ) -> None:
        data = b"0123456789" * 100
        key = store.put_bytes(data, suffix=".skops")
        overwrite_raw(store, key, data[:-1] + b"X" if damage == "changed" else data[:10])
        with pytest.raises(ArtifactError, match=rf"checksum mismatch.*{key}.*corrupt"):
            store.get_bytes(key)
        with pytest.raises(ArtifactError, match="checksum mismatch"):
            store.read_named(key)
        dest = tmp_path / "downloads" / "model.skops"
        with pytest.raises(ArtifactError, match="checksum mismatch"):
            store.get_file(key, dest)
        assert list(dest.parent.iterdir()) == []  # neither dest nor a temp file

    def test_put_repairs_a_truncated_artifact(self, store: ArtifactStore) -> None:
        key = store.put_bytes(b"complete content")
        overwrite_raw(store, key, b"compl")
        assert store.put_bytes(b"complete content") == key
        assert store.get_bytes(key) == b"complete content"

    def test_put_file_and_get_file(self, store: ArtifactStore, tmp_path: Path) -> None:
        payload = np.random.default_rng(0).bytes(3 * 2**20 + 17)
        src = tmp_path / "big.bin"
        src.write_bytes(payload)
        key = store.put_file(src, suffix=".bin")
        assert key == store.put_bytes(payload, suffix=".bin")  # same content, same key
        assert store.bytes_written == len(payload)
        dest = store.get_file(key, tmp_path / "nested" / "copy.bin")
        assert dest == tmp_path / "nested" / "copy.bin"
        assert dest.read_bytes() == payload
        assert store.bytes_read == len(payload)
        assert sorted(p.name for p in dest.parent.iterdir()) == ["copy.bin"]

    def test_put_file_of_a_missing_file_is_refused(
        self, store: ArtifactStore, tmp_path: Path
    ) -> None:
        with pytest.raises(ArtifactError, match="not a file"):
            store.put_file(tmp_path / "nope.bin")

    # -- named keys ----------------------------------------------------------------------

    def test_named_roundtrip_and_replace(self, store: ArtifactStore) -> None:
        key = "logs/churn/predictions/2024-01-01/part-0.parquet"
        store.write_named(key, b"v1")
        assert store.read_named(key) == b"v1"
        store.write_named(key, b"version 2")
        assert store.read_named(key) == b"version 2"
        assert store.get_bytes(key) == b"version 2"
        assert store.size_bytes(key) == len(b"version 2")

    def test_named_write_refuses_content_folder(self, store: ArtifactStore) -> None:
        with pytest.raises(ArtifactError, match=r"content-addressed.*put_bytes"):
            store.write_named("sha256/ab/cdef", b"x")

    @pytest.mark.parametrize("call", sorted(_MISSING_READS))
    def test_missing_key_raises_not_found(
        self, store: ArtifactStore, tmp_path: Path, call: str
    ) -> None:
        store.write_named("reports/present.json", b"{}")
        for key in ["reports/absent.json", "sha256/00/" + "0" * 62, "reports"]:
            with pytest.raises(ArtifactNotFound, match=rf"no artifact '{key}'.*store\.list"):
                _MISSING_READS[call](store, key, tmp_path)
        assert not (tmp_path / "out.bin").exists()

    @pytest.mark.parametrize("call", sorted(_KEYED_CALLS))
    def test_invalid_key_is_refused(self, store: ArtifactStore, call: str) -> None:
        for key in BAD_KEYS:
            with pytest.raises(ArtifactError, match=r"invalid artifact key .*relative POSIX paths"):
                _KEYED_CALLS[call](store, key)

    def test_invalid_prefix_is_refused(self, store: ArtifactStore) -> None:
        with pytest.raises(ArtifactError, match="'..' segment"):
            store.list("../")

    # -- listing, existence, deletion ----------------------------------------------------

    def test_list_is_sorted_and_folder_scoped(self, store: ArtifactStore) -> None:
        named = ["logs/m2/b.parquet", "logs/m/z.parquet", "logs/m/a/1.parquet", "top.txt"]
        for key in named:
            store.write_named(key, key.encode())
        addressed = store.put_bytes(b"blob", suffix=".json")
        assert store.list("") == sorted([*named, addressed])
        assert store.list("logs/m") == ["logs/m/a/1.parquet", "logs/m/z.parquet"]
        assert store.list("logs/m/") == store.list("logs/m")
        assert store.list("sha256") == [addressed]
        assert store.list("nothing/here") == []

    def test_exists_and_delete(self, store: ArtifactStore) -> None:
        key = store.put_bytes(b"to delete")
        store.write_named("a/b.txt", b"named")
        assert store.exists(key) and store.exists("a/b.txt")
        assert not store.exists("a")  # a folder is not an artifact
        store.delete(key)
        store.delete("a/b.txt")
        assert not store.exists(key) and not store.exists("a/b.txt")
        store.delete("a/b.txt")  # idempotent
        with pytest.raises(ArtifactNotFound):
            store.get_bytes(key)

    # -- accounting and concurrency ------------------------------------------------------

    def test_byte_counters(self, store: ArtifactStore) -> None:
        assert (store.bytes_read, store.bytes_written) == (0, 0)
        key = store.put_bytes(b"12345")
        store.write_named("x/y", b"123")
        store.get_bytes(key)
        store.read_named("x/y")
        store.read_named("x/y")
        assert (store.bytes_read, store.bytes_written) == (11, 8)

    def test_concurrent_writers_and_readers(self, store: ArtifactStore) -> None:
        payloads = [f"payload {i % 4}".encode() * 100 for i in range(16)]
        keys: list[str] = [""] * len(payloads)
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                keys[i] = store.put_bytes(payloads[i])
                store.write_named(f"shared/{i % 2}", payloads[i])
                assert store.get_bytes(keys[i]) == payloads[i]
                assert store.read_named(f"shared/{i % 2}") in payloads
            except BaseException as exc:  # surfaced below: threads swallow exceptions
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(payloads))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(set(keys)) == 4
        assert store.list("") == sorted({*keys, "shared/0", "shared/1"})
        # every payload has the same length: each thread read two of them
        assert store.bytes_read == 2 * sum(len(p) for p in payloads)
        assert store.bytes_written >= len(payloads) * len(payloads[0]) + 4 * len(payloads[0])

    # -- readers outside the store -------------------------------------------------------

    def test_parquet_is_readable_through_fs_url(self, store: ArtifactStore) -> None:
        frame = pd.DataFrame({"id": [1, 2, 3], "score": [0.1, 0.5, 0.9], "region": list("abc")})
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        key = "logs/churn/predictions/2024-01-01/seg.parquet"
        store.write_named(key, sink.getvalue().to_pybytes())
        url, options = store.fs_url(key), store.storage_options
        with fsspec.open(url, "rb", **options) as fh:
            table = pq.read_table(fh)
        assert table.to_pandas().equals(frame)
        pd.testing.assert_frame_equal(pd.read_parquet(url, storage_options=options or None), frame)

    def test_json_roundtrip(self, store: ArtifactStore) -> None:
        doc: dict[str, Any] = {"b": [1, 2.5, None], "a": {"n": np.int64(3)}, "z": np.arange(3)}
        key = put_json(store, doc)
        assert key.endswith(".json")
        assert get_json(store, key) == {"a": {"n": 3}, "b": [1, 2.5, None], "z": [0, 1, 2]}
        assert put_json(store, {"z": [0, 1, 2], "b": [1, 2.5, None], "a": {"n": 3}}) == key
        with pytest.raises(ArtifactError, match="not a JSON document"):
            get_json(store, store.put_bytes(b"\x00not json"))
        with pytest.raises(ArtifactError, match="cannot store the object as JSON"):
            put_json(store, {"obj": object()})
