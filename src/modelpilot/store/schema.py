"""The metadata tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

The schema is created and changed only by the Alembic migrations in
``modelpilot/store/migrations``; these ``Table`` objects are what the repository code
queries and what ``alembic revision --autogenerate`` compares against, and a test checks
that the migrations at head produce exactly this schema.

Conventions:
  * times are :class:`UTCDateTime`: stored as naive UTC (``timestamp without time zone``
    on PostgreSQL, ISO text on SQLite), returned timezone-aware UTC;
  * metric timestamps are integer microseconds since the epoch, because metrics are the
    one high-volume table and a plain integer is the cheapest column to bind;
  * JSON columns use the generic :class:`sqlalchemy.JSON` type (JSON text on SQLite,
    ``json`` on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

# Deterministic constraint names, so migrations can refer to them on every dialect.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A datetime stored as naive UTC and returned timezone-aware UTC.

    A naive datetime given by the caller is taken to be UTC already.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text, e.g. from a hand-written query
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def _name(name: str = "name") -> sa.Column[str]:
    return sa.Column(name, sa.String(255), nullable=False)


def _model_fk(nullable: bool = False) -> sa.Column[str]:
    return sa.Column("model", sa.String(255), sa.ForeignKey("models.name"), nullable=nullable)


models = sa.Table(
    "models",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("hash", sa.String(128), nullable=False, unique=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.Column("time_min", UTCDateTime, nullable=True),
    sa.Column("time_max", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _model_fk(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("cost", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("heartbeat_at", UTCDateTime, nullable=True),
    sa.Index(None, "model", "status"),
)

# The datasets a run read, in order. No foreign key to ``datasets``: a run may name a
# snapshot that was never registered (e.g. an external table), and lineage must keep it.
run_datasets = sa.Table(
    "run_datasets",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("dataset_hash", sa.String(128), nullable=False, index=True),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    # nullable because SQLite stores NaN as NULL; read back as NaN
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp_us", sa.BigInteger, nullable=False),
    sa.Index(None, "run_id", "key", "step"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _model_fk(),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("artifact_key", sa.Text, nullable=False),
    sa.Column("reference_key", sa.Text, nullable=True),
    sa.Column("signature", sa.JSON, nullable=False),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("classes", sa.JSON, nullable=True),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("cost", sa.Float, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    # the version-number allocator's safety net; NULL idempotency keys never collide
    sa.UniqueConstraint("model", "version"),
    sa.UniqueConstraint("model", "idempotency_key"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("model", sa.String(255), primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.ForeignKeyConstraint(
        ["model", "version"], ["model_versions.model", "model_versions.version"]
    ),
)

# The audit log. ``model`` is not a foreign key: events outlive what they describe and
# some (controller ticks, token changes) belong to no model.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("model", sa.String(255), nullable=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(255), nullable=True),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("numbers", sa.JSON, nullable=False),
    sa.Index(None, "model", "kind", "time"),
    sa.Index(None, "time"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Column("actor", sa.String(255), nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.UniqueConstraint("model", "version"),
    sa.ForeignKeyConstraint(
        ["model", "version"], ["model_versions.model", "model_versions.version"]
    ),
)

state = sa.Table(
    "state",
    metadata,
    sa.Column("namespace", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

monitoring_reports = sa.Table(
    "monitoring_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _model_fk(),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=True),
    sa.Column("window_end", UTCDateTime, nullable=True),
    sa.Column("n_predictions", sa.Integer, nullable=False),
    sa.Column("n_labelled", sa.Integer, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("details_key", sa.Text, nullable=True),
    sa.Index(None, "model", "created_at"),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _name(),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

# The outbox of outbound webhooks: one row per (webhook, event), written before the first
# attempt, updated after each one. ``event_id`` is not a foreign key, like ``events.model``:
# a delivery record outlives a pruned audit log.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook", sa.String(255), nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("model", sa.String(255), nullable=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("webhook", "event_id"),
    sa.Index(None, "status", "next_attempt_at"),
)

edge_devices = sa.Table(
    "edge_devices",
    metadata,
    sa.Column("device", sa.String(255), primary_key=True),
    _model_fk(),
    sa.Column("pinned_version", sa.Integer, nullable=True),
    sa.Column("version", sa.Integer, nullable=True),  # the version its last report was scored by
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_report_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # counters (reports, duplicates, refused) and the last drift verdict, for the dashboard
    sa.Column("info", sa.JSON, nullable=False),
)

edge_reports = sa.Table(
    "edge_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device", sa.String(255), sa.ForeignKey("edge_devices.device"), nullable=False),
    _model_fk(),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=True),
    sa.Column("window_end", UTCDateTime, nullable=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.UniqueConstraint("device", "seq"),
    sa.Index(None, "model", "id"),
)
