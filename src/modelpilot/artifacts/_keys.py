"""Key rules shared by every backend: validation, content addressing, verification."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from modelpilot.errors import ArtifactError

#: Folder reserved for content-addressed keys; named writes may not go there.
CONTENT_ROOT = "sha256"
#: Prefix of in-flight temporary files; listing hides them and keys may not use it.
TEMP_PREFIX = ".mp-tmp-"

_KEY_FORM = (
    "keys are relative POSIX paths such as 'logs/churn/2024-01-01/part-0.parquet': "
    "'/'-separated names, no leading '/', no '.' or '..' or empty segments, no backslashes"
)
_CONTENT_KEY = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{62})(\.[A-Za-z0-9_.-]+)?")
_SUFFIX = re.compile(r"(\.[A-Za-z0-9_-]+)*")


def check_key(key: str) -> str:
    """Return ``key`` when it is a valid relative key.

    Raises:
        ArtifactError: the key is empty, absolute, escapes the store or uses backslashes.
    """
    problem = _key_problem(key)
    if problem:
        raise ArtifactError(f"invalid artifact key {key!r}: {problem}; {_KEY_FORM}")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: ``""`` (everything) or a key, a trailing ``/`` allowed."""
    stripped = prefix.rstrip("/") if isinstance(prefix, str) else prefix
    return "" if stripped == "" else check_key(stripped)


def check_named(key: str) -> str:
    """A key for ``write_named``: valid and outside the content-addressed folder."""
    check_key(key)
    if key.split("/", 1)[0] == CONTENT_ROOT:
        raise ArtifactError(
            f"invalid artifact key {key!r}: the folder '{CONTENT_ROOT}/' holds content-addressed "
            "artifacts; store content there with put_bytes()/put_file(), or pick another folder"
        )
    return key


def _key_problem(key: object) -> str:
    if not isinstance(key, str) or key == "":
        return "it is empty" if key == "" else f"it is a {type(key).__name__}, not a string"
    if "\\" in key or "\x00" in key:
        return "it contains a backslash or NUL character"
    if key.startswith("/") or re.match(r"[A-Za-z]:", key):
        return "it is an absolute path"
    segments = key.split("/")
    if ".." in segments:
        return "it contains a '..' segment"
    if "" in segments or "." in segments:
        return "it contains an empty or '.' segment"
    if segments[-1].startswith(TEMP_PREFIX):
        return f"names starting with {TEMP_PREFIX!r} are reserved for temporary files"
    return ""


def check_suffix(suffix: str) -> str:
    """Return ``suffix`` when it looks like ``".json"`` or ``".tar.gz"`` (or is empty)."""
    if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
        raise ArtifactError(
            f"invalid artifact suffix {suffix!r}: use '' or a file extension such as '.json' "
            "or '.tar.gz' (letters, digits, '_' and '-' after each dot)"
        )
    return suffix


def content_key(digest: str, suffix: str) -> str:
    """The content-addressed key of a sha256 hex digest."""
    return f"{CONTENT_ROOT}/{digest[:2]}/{digest[2:]}{suffix}"


def expected_digest(key: str) -> str | None:
    """The sha256 a content-addressed key promises, or ``None`` for a named key."""
    match = _CONTENT_KEY.fullmatch(key)
    return match.group(1) + match.group(2) if match else None


def file_digest(path: str | Path) -> str:
    """sha256 of a file, streamed (files may be larger than memory)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def verify(key: str, actual: str, url: str) -> None:
    """Raise when ``key`` is content-addressed and ``actual`` is not the digest it names.

    Raises:
        ArtifactError: checksum mismatch (the artifact is corrupt).
    """
    expected = expected_digest(key)
    if expected is not None and expected != actual:
        raise ArtifactError(
            f"checksum mismatch for artifact {key!r} in {url}: its content hashes to sha256 "
            f"{actual[:16]}…, not the {expected[:16]}… its key names, so the artifact is corrupt "
            "(changed or truncated after it was written). Delete it and write it again from its "
            "source (e.g. retrain or re-register the model), or restore it from a backup"
        )
