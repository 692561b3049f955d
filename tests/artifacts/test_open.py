"""Choosing a backend by URL scheme."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.artifacts import BACKENDS, ArtifactStore, open_artifacts
from modelpilot.artifacts.local import LocalArtifactStore
from modelpilot.errors import ConfigError


def test_registry_covers_paths_files_and_s3() -> None:
    assert set(BACKENDS) >= {"", "file", "s3"}


@pytest.mark.parametrize("form", ["{p}", "file://{p}"])
def test_local_forms(tmp_path: Path, form: str) -> None:
    store = open_artifacts(form.format(p=tmp_path))
    assert isinstance(store, LocalArtifactStore)
    assert store.url == str(tmp_path)


def test_relative_folder_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert open_artifacts(".modelpilot/artifacts").url == str(tmp_path / ".modelpilot/artifacts")


def test_unknown_scheme() -> None:
    with pytest.raises(ConfigError, match=r"no artifact store for scheme 'gs'.*file://, s3://"):
        open_artifacts("gs://bucket/x")


def test_options_for_a_local_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\['endpoint_url'\] do not apply to the local folder"):
        open_artifacts(str(tmp_path), {"endpoint_url": "http://x"})


def test_a_registered_backend_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def elsewhere(url: str, options: dict[str, object]) -> ArtifactStore:
        return open_artifacts(str(tmp_path / url.split("://", 1)[1]))

    monkeypatch.setitem(BACKENDS, "mem", elsewhere)
    assert open_artifacts("mem://abc").url == str(tmp_path / "abc")
