"""The errors a user can cause.

Every error a user can provoke (a bad config, bad data, a bad request, an unknown
model) is a :class:`ModelpilotError` whose message says what was wrong and how to fix
it. The CLI prints it without a traceback and exits 1; the HTTP API answers with
``status_code`` and ``{"error": {"type": ..., "message": ...}}``.
"""

from __future__ import annotations


class ModelpilotError(Exception):
    """Base of every error a user can cause; ``str(err)`` is the whole message."""

    status_code: int = 400

    @property
    def type_name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"type": self.type_name, "message": str(self)}}


class ConfigError(ModelpilotError):
    """The configuration file is missing, malformed or inconsistent."""


class DataError(ModelpilotError):
    """Input data cannot be used: missing file, unknown column, empty, wrong types."""


class ValidationFailed(DataError):
    """A data validation check configured to ``fail`` failed; ``report`` holds all checks."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class StoreError(ModelpilotError):
    """The metadata store failed or holds something inconsistent with the request."""

    status_code = 500


class NotFound(ModelpilotError):
    """A model, version, alias, run or artifact does not exist."""

    status_code = 404


class ModelNotFound(NotFound):
    """No model, version or alias by that name."""


class ArtifactNotFound(NotFound):
    """No artifact under that key (a missing file and a missing S3 key alike)."""


class ArtifactError(ModelpilotError):
    """An artifact is corrupt (checksum mismatch), has a refused key, or an unsafe type."""

    status_code = 500


class RequestError(ModelpilotError):
    """An HTTP request body does not match the model's signature or the API."""

    status_code = 422


class AuthError(ModelpilotError):
    """A token is missing (401) or lacks the role for the action (403)."""

    status_code = 401


class Forbidden(AuthError):
    status_code = 403


class Conflict(ModelpilotError):
    """The action conflicts with the current state (e.g. approving a decided version)."""

    status_code = 409


class VersionNotServable(Conflict):
    """A version cannot be promoted: its model file is refused, or it does not answer a probe."""
