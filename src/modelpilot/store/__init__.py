"""The metadata store: runs, metrics, datasets, model versions, aliases, events.

``Store.open(url)`` connects to SQLite (the embedded default) or PostgreSQL and migrates
the schema to the newest revision. See :class:`Store` for the contract.
"""

from __future__ import annotations

from modelpilot.store._state import StateRecord
from modelpilot.store.records import (
    ANY,
    ApprovalRecord,
    DatasetRecord,
    DeliveryRecord,
    EdgeDeviceRecord,
    EdgeReportRecord,
    EventRecord,
    MetricPoint,
    ModelVersionRecord,
    MonitoringReportRecord,
    RunRecord,
    TokenRecord,
)
from modelpilot.store.store import Store

__all__ = [
    "ANY",
    "ApprovalRecord",
    "DatasetRecord",
    "DeliveryRecord",
    "EdgeDeviceRecord",
    "EdgeReportRecord",
    "EventRecord",
    "MetricPoint",
    "ModelVersionRecord",
    "MonitoringReportRecord",
    "RunRecord",
    "StateRecord",
    "Store",
    "TokenRecord",
]
