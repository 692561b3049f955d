"""OpenAPI descriptions of the endpoints (the handlers read raw bytes, not pydantic models).

The request and response models here only document the API in ``/openapi.json``; the
predict handler validates against each model version's own signature instead, which a
static schema cannot express.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: dict[str, str] = Field(description='{"type": ..., "message": ...}')


class PredictRequest(BaseModel):
    instances: list[dict[str, Any]] = Field(description="one object per row: feature -> value")
    ids: list[str] | None = Field(None, description="request ids, one per instance (generated if absent)")


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[list[float]] | None = Field(None, description="classifiers only, in class order")
    ids: list[str]
    model_version: int


class FeedbackRequest(BaseModel):
    ids: list[str]
    labels: list[Any]
    rewards: list[float | None] | None = None


class FeedbackResponse(BaseModel):
    accepted: int = Field(description="labels written now: their predictions are in the log or in memory")
    held: int = Field(description="labels of ids not in the log yet (HTTP 202): written once a replica "
                      "logs the prediction, dropped after serving.feedback_hold")
    held_ids: list[str] = Field(description="up to 10 of the held ids")


class ModelInfo(BaseModel):
    name: str
    champion: int | None
    aliases: dict[str, int]
    versions: list[dict[str, Any]]
    challengers: list[Any]
    traffic: dict[str, float]
    rollout: dict[str, Any] | None
    serving: dict[str, Any] | None = Field(
        None, description='the version this server process serves and its runtime: '
        '{"version": N, "runtime": "onnxruntime" | "fastpath" | "sklearn"} (null: not loaded yet)')


class Health(BaseModel):
    status: str = Field(description='"ok", or "unhealthy" (HTTP 503) while the log cannot be written')
    reason: str | None = Field(None, description="why the server is unhealthy")
    models: dict[str, int]


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed JSON"},
    404: {"model": ErrorBody, "description": "unknown model"},
    413: {"model": ErrorBody, "description": "body over serving.max_body_bytes"},
    422: {"model": ErrorBody, "description": "instances do not match the signature"},
}

PREDICT: dict[str, Any] = {
    "summary": "Predict with the model's champion",
    "openapi_extra": _body(PredictRequest),
    "responses": {200: {"model": PredictResponse}, **_ERRORS},
}
FEEDBACK: dict[str, Any] = {
    "summary": "Send labels (and rewards) for earlier predictions",
    "openapi_extra": _body(FeedbackRequest),
    "responses": {200: {"model": FeedbackResponse},
                  202: {"model": FeedbackResponse, "description": "some labels are held"}, **_ERRORS},
}
MODEL_INFO: dict[str, Any] = {
    "summary": "Champion, aliases, versions, traffic split and rollout state",
    "responses": {200: {"model": ModelInfo}, 404: _ERRORS[404]},
}
HEALTH: dict[str, Any] = {
    "summary": "Liveness and the versions loaded",
    "responses": {200: {"model": Health}, 503: {"model": Health, "description": "the log cannot be written"}},
}
