"""The signed bundle: verified before anything is loaded; any change or another key is refused."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edge_helpers import Fleet, rezip

from modelpilot.edge.agent import BundleRefused, open_bundle
from modelpilot.edge.bundle import build_bundle, keygen, public_bytes
from modelpilot.edge.ed25519 import verify
from modelpilot.errors import ConfigError


def test_a_published_bundle_verifies_and_carries_what_the_device_needs(fleet: Fleet) -> None:
    b = open_bundle(fleet.bundle, fleet.public_key)
    assert (b.manifest["model"], b.version, b.manifest["task"]) == ("churn", 1, "classification")
    assert set(b.manifest["files"]) == {"model.onnx", "schema.json", "profile.json"}
    assert b.manifest["parity"]["passed"] is True  # checked against the pipeline on validation rows
    assert {i["name"]: i["kind"] for i in b.schema["inputs"]}["plan"] == "categorical"
    assert [c["name"] for c in b.schema["columns"]] == ["age", "income", "plan", "region"]
    # the reduced profile: edges and categories only, no sample of training values
    assert set(b.profile["numeric"]) == {"age", "income"} and len(b.profile["numeric"]["age"]) >= 5
    assert sorted(b.profile["categorical"]["plan"]) == ["basic", "max", "pro"]
    assert b.profile["score"] and b.profile["prediction"]
    assert b"sample" not in zipfile.ZipFile(io.BytesIO(fleet.bundle)).read("profile.json")


@pytest.mark.parametrize("name", ["model.onnx", "schema.json", "profile.json", "manifest.json"])
def test_a_changed_file_is_refused(fleet: Fleet, name: str) -> None:
    original = zipfile.ZipFile(io.BytesIO(fleet.bundle)).read(name)
    tampered = rezip(fleet.bundle, {name: original[:-1] + bytes([original[-1] ^ 1])})
    with pytest.raises(BundleRefused, match="signature|does not match"):
        open_bundle(tampered, fleet.public_key)


def test_another_key_an_extra_file_or_a_missing_file_is_refused(fleet: Fleet) -> None:
    other = public_bytes(Ed25519PrivateKey.generate())
    with pytest.raises(BundleRefused, match="does not verify with the trusted public key"):
        open_bundle(fleet.bundle, other)
    with pytest.raises(BundleRefused, match="holds exactly"):
        open_bundle(rezip(fleet.bundle, {"evil.py": b"print(1)"}), fleet.public_key)
    with pytest.raises(BundleRefused, match="holds exactly"):
        open_bundle(rezip(fleet.bundle, {"model.onnx": None}), fleet.public_key)
    with pytest.raises(BundleRefused, match="not a readable bundle"):
        open_bundle(b"PK not a zip", fleet.public_key)


def test_a_bundle_signed_by_another_key_is_refused(fleet: Fleet) -> None:
    record = fleet.store.get_version("churn", 1)
    rogue = build_bundle(record, b"onnx", {"columns": {}}, Ed25519PrivateKey.generate(), inputs=[], output="variable")
    with pytest.raises(BundleRefused, match="signature"):
        open_bundle(rogue, fleet.public_key)


def test_stdlib_ed25519_agrees_with_cryptography() -> None:
    for i in range(8):
        key = Ed25519PrivateKey.generate()
        pub, msg = public_bytes(key), os.urandom(i * 13)
        sig = key.sign(msg)
        assert verify(pub, msg, sig)
        assert not verify(pub, msg + b"x", sig)
        assert not verify(pub, msg, sig[:-1] + bytes([sig[-1] ^ 0x40]))
        assert not verify(public_bytes(Ed25519PrivateKey.generate()), msg, sig)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path) -> None:  # type: ignore[no-untyped-def]
    private, public = keygen(tmp_path / "k" / "signing.key")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert len(bytes.fromhex(public.read_text().strip())) == 32
    with pytest.raises(ConfigError, match="--overwrite"):
        keygen(private)
