"""The immutable records the store hands back.

Every record is a frozen dataclass built from one row; changing one never changes the
database (call a store method for that). Times are timezone-aware UTC; JSON fields are
plain ``dict``/``list`` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

RunStatus = Literal["running", "finished", "failed"]
VersionStatus = Literal["registered", "rejected", "awaiting_approval", "archived"]
ApprovalStatus = Literal["pending", "approved", "rejected"]

RUN_STATUSES: Final = ("running", "finished", "failed")
VERSION_STATUSES: Final = ("registered", "rejected", "awaiting_approval", "archived")


class _Any:
    """The "no expectation" default of ``Store.set_alias(expected_current=...)``."""

    _instance: _Any | None = None

    def __new__(cls) -> _Any:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    hash: str
    source: str
    rows: int
    schema: dict[str, str]
    time_min: datetime | None
    time_max: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class RunRecord:
    id: int
    model: str
    kind: str  # "train" | "retrain" | "backtest" | ...
    status: str  # "running" | "finished" | "failed"
    params: dict[str, Any]
    tags: dict[str, Any]
    profile: dict[str, Any]
    cost: float | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime | None
    dataset_hashes: list[str]


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class ModelVersionRecord:
    model: str
    version: int
    run_id: int | None
    status: str  # "registered" | "rejected" | "awaiting_approval" | "archived"
    artifact_key: str  # key of the skops model file in the artifact store
    reference_key: str | None  # key of the reference profile JSON in the artifact store
    signature: list[dict[str, Any]]  # [{"name": str, "type": "float"|"int"|...}]
    task: str  # "classification" | "regression"
    classes: list[Any] | None  # class labels, in predict_proba order
    metrics: dict[str, float]  # validation metrics
    lineage: dict[str, Any]
    cost: float | None
    description: str | None
    created_at: datetime
    idempotency_key: str | None


@dataclass(frozen=True)
class EventRecord:
    id: int
    time: datetime
    model: str | None
    kind: str
    subject: str | None
    actor: str
    reason: str
    numbers: dict[str, Any]


@dataclass(frozen=True)
class ApprovalRecord:
    id: int
    model: str
    version: int
    status: str  # "pending" | "approved" | "rejected"
    requested_at: datetime
    decided_at: datetime | None
    actor: str | None
    comment: str | None


@dataclass(frozen=True)
class MonitoringReportRecord:
    id: int
    model: str
    version: int | None
    created_at: datetime
    window_start: datetime | None
    window_end: datetime | None
    n_predictions: int
    n_labelled: int
    summary: dict[str, Any]
    details_key: str | None


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: str
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the token may still authenticate."""
        return self.revoked_at is None


DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class DeliveryRecord:
    """One event sent (or to be sent) to one webhook; ``attempts`` so far."""

    id: int
    webhook: str
    event_id: int
    kind: str
    model: str | None
    url: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    http_status: int | None
    error: str | None
    duration_ms: float | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class EdgeDeviceRecord:
    device: str
    model: str
    pinned_version: int | None
    version: int | None  # the version that scored its last report
    last_seq: int  # the highest report sequence number received
    last_report_at: datetime | None
    created_at: datetime
    info: dict[str, Any]  # counters ("reports", "duplicates", "refused") and the last drift verdict


@dataclass(frozen=True)
class EdgeReportRecord:
    id: int
    device: str
    model: str
    version: int
    seq: int
    received_at: datetime
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    bytes: int
    payload: dict[str, Any]
