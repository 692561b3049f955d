"""The signed bundle, built at home: keys, the device profile, the manifest, the zip.

A bundle is a zip of ``model.onnx``, ``schema.json`` (the input columns, their types and how the graph takes them),
``profile.json`` (the version's reference profile reduced to what a device counts with: the
numeric bin edges, the category lists, the score bins and predicted-label list, the segment
columns), ``manifest.json`` (model, version, task, classes, target, lineage, created-at,
the SHA-256 and size of each file, the export's parity figures) and ``manifest.sig``: the
Ed25519 signature of the manifest's exact bytes. The device
(:func:`modelpilot.edge.agent.open_bundle`) checks the signature, then every hash, before
it reads anything else.

Keys: ``modelpilot edge keygen`` writes the private key (PKCS#8 PEM, mode 0600) to
``edge.signing_key`` and its public half, as hex, next to it with ``.pub``; devices get the
public file out of band (it is not secret), the private key never leaves home.

Published bundles are stored in the artifact store and indexed in the store's state
(namespace ``edge_bundles``, key ``"<model>:<version>"``), so the server hands them out
without converting anything (serving never imports training).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelpilot.errors import ConfigError, NotFound
from modelpilot.store import ModelVersionRecord

BUNDLE_FORMAT = "modelpilot.edge-bundle/1"
NAMESPACE = "edge_bundles"


# --------------------------------------------------------------------------- keys


def keygen(private_path: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair: the private key (mode 0600) and ``<path>.pub`` (hex).

    Raises:
        ConfigError: the key exists already and ``overwrite`` is False.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Path(private_path)
    public = private.with_name(private.name + ".pub")
    if private.exists() and not overwrite:
        raise ConfigError(f"a signing key exists at {private}; devices trust its public half. "
                          "Pass --overwrite to replace it (then give devices the new .pub file)")
    private.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_text(public_bytes(key).hex() + "\n")
    return private, public


def load_signing_key(path: str | Path) -> Any:
    """The Ed25519 private key at ``path``.

    Raises:
        ConfigError: no key there, or not an Ed25519 key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no signing key at {p}: run 'modelpilot edge keygen' (or set edge.signing_key)")
    key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{p} is not an Ed25519 private key; write one with 'modelpilot edge keygen'")
    return key


def public_bytes(key: Any) -> bytes:
    """The raw 32-byte public key of a private key."""
    from cryptography.hazmat.primitives import serialization

    raw: bytes = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


# --------------------------------------------------------------------------- contents


def device_profile(reference: Mapping[str, Any], segments: list[str] | None = None) -> dict[str, Any]:
    """What a device counts with: bin edges, category lists, score bins, predicted labels.

    The counts a device sends over these are the bucket counts the drift methods compute
    from raw rows against ``reference`` (:mod:`modelpilot.edge.home`).
    """
    cols = reference.get("columns") or {}
    score, pred = reference.get("score"), reference.get("prediction")
    return {
        "numeric": {n: list(s["edges"]) for n, s in cols.items() if s["type"] == "numeric"},
        "categorical": {n: list(s["categories"]) for n, s in cols.items() if s["type"] == "categorical"},
        "score": list(score["edges"]) if score else None,
        "prediction": list(pred["categories"]) if pred else None,
        "segments": list(segments or []),
    }


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def build_bundle(
    version: ModelVersionRecord, onnx_model: bytes, reference: Mapping[str, Any], signing_key: Any, *,
    inputs: list[dict[str, Any]], output: str, target: str | None = None, segments: list[str] | None = None,
    parity: Mapping[str, Any] | None = None,
) -> bytes:
    """The signed bundle (zip bytes) of one version.

    Args:
        version: the model version (name, number, task, classes, lineage, signature).
        onnx_model: the version's pipeline as ONNX (:mod:`modelpilot.onnx`).
        inputs: the graph's input schema (one entry per column: numeric float32, or
            categorical strings with the column's missing marker).
        output: the graph output a device reads (``probabilities`` or ``variable``).
        reference: the version's reference profile (reduced here by :func:`device_profile`).
        signing_key: the Ed25519 private key (:func:`load_signing_key`).
        target: the label column a device may find in its rows (labels for performance).
        segments: the segment columns labelled performance is also counted by.
        parity: the graph's check against the scikit-learn pipeline on the version's
            validation rows, written to the manifest.
    """
    files = {
        "model.onnx": onnx_model,
        "schema.json": _dumps({"columns": version.signature, "inputs": inputs, "output": output}),
        "profile.json": _dumps(device_profile(reference, segments)),
    }
    manifest = {
        "format": BUNDLE_FORMAT, "model": version.model, "version": version.version, "task": version.task,
        "classes": version.classes, "target": target, "lineage": version.lineage,
        "created_at": datetime.now(UTC).isoformat(), "parity": dict(parity or {}),
        "key_id": hashlib.sha256(public_bytes(signing_key)).hexdigest()[:16],
        "files": {n: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for n, b in files.items()},
    }
    manifest_bytes = _dumps(manifest)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", manifest_bytes)
        zf.writestr("manifest.sig", signing_key.sign(manifest_bytes))
    return buf.getvalue()


def etag_of(bundle: bytes) -> str:
    """The bundle's ETag: the SHA-256 of its manifest (what the agent compares)."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return hashlib.sha256(zf.read("manifest.json")).hexdigest()


# --------------------------------------------------------------------------- published bundles


def publish(store: Any, artifacts: Any, model: str, version: int, bundle: bytes) -> dict[str, Any]:
    """Store a bundle and index it as the one devices get for ``model`` v``version``."""
    entry = {"key": artifacts.put_bytes(bundle, suffix=".bundle.zip"), "etag": etag_of(bundle),
             "bytes": len(bundle), "published_at": datetime.now(UTC).isoformat()}
    store.put_state(NAMESPACE, f"{model}:{version}", entry)
    store.add_event("edge_bundle_published", model=model, subject=f"v{version}", actor="edge",
                    reason=f"bundle of v{version} published for devices ({len(bundle)} bytes)",
                    numbers={"version": version, "bytes": len(bundle), "etag": entry["etag"]})
    return entry


def published(store: Any, model: str, version: int) -> dict[str, Any] | None:
    """The index entry of ``model`` v``version``'s bundle, or None."""
    return store.get_state(NAMESPACE, f"{model}:{version}")  # type: ignore[no-any-return]


def published_bundle(store: Any, artifacts: Any, model: str, version: int) -> tuple[bytes, str]:
    """The bundle bytes and ETag devices get for ``model`` v``version``.

    Raises:
        NotFound: no bundle was published for that version.
    """
    entry = published(store, model, version)
    if entry is None:
        raise NotFound(f"no edge bundle of {model} v{version} is published: run "
                       f"'modelpilot edge export --version {version} --publish'")
    return artifacts.get_bytes(entry["key"]), str(entry["etag"])
