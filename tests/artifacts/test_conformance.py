"""The shipped conformance suite over every artifact backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.artifacts import ArtifactStore, open_artifacts
from modelpilot.testing.artifact_suite import ArtifactStoreSuite
from modelpilot.testing.s3 import S3Server


class TestLocalStore(ArtifactStoreSuite):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ArtifactStore:
        return open_artifacts(str(tmp_path / "artifacts"))


@pytest.mark.s3
class TestS3Store(ArtifactStoreSuite):
    @pytest.fixture
    def store(self, s3_bucket: S3Server) -> ArtifactStore:
        return open_artifacts(s3_bucket.url("team/artifacts"), s3_bucket.options)


@pytest.mark.s3
class TestS3BucketRoot(ArtifactStoreSuite):
    """A store at the bucket's root (no prefix) keeps the same contract."""

    @pytest.fixture
    def store(self, s3_bucket: S3Server) -> ArtifactStore:
        return open_artifacts(s3_bucket.url(), s3_bucket.options)
