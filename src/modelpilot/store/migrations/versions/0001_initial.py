"""The initial schema: models, datasets, runs, metrics, versions, aliases, events,
approvals, state, monitoring reports and tokens.

Written out by hand (not ``metadata.create_all``) so that this revision stays what it
was when released, whatever ``schema.py`` becomes later.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_models"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("schema", sa.JSON(), nullable=False),
        _time("time_min", nullable=True),
        _time("time_max", nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("hash", name="uq_datasets_hash"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _time("created_at"),
        _time("finished_at", nullable=True),
        _time("heartbeat_at", nullable=True),
        sa.ForeignKeyConstraint(["model"], ["models.name"], name="fk_runs_model_models"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_model_status", "runs", ["model", "status"])
    op.create_table(
        "run_datasets",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("dataset_hash", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_datasets_run_id_runs"),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_run_datasets"),
    )
    op.create_index("ix_run_datasets_dataset_hash", "run_datasets", ["dataset_hash"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metrics_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
    )
    op.create_index("ix_metrics_run_id_key_step", "metrics", ["run_id", "key", "step"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("artifact_key", sa.Text(), nullable=False),
        sa.Column("reference_key", sa.Text(), nullable=True),
        sa.Column("signature", sa.JSON(), nullable=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        _time("created_at"),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(["model"], ["models.name"], name="fk_model_versions_model_models"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_model_versions_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model", "version", name="uq_model_versions_model_version"),
        sa.UniqueConstraint(
            "model", "idempotency_key", name="uq_model_versions_model_idempotency_key"
        ),
    )
    op.create_table(
        "aliases",
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["model", "version"],
            ["model_versions.model", "model_versions.version"],
            name="fk_aliases_model_model_versions",
        ),
        sa.PrimaryKeyConstraint("model", "alias", name="pk_aliases"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _time("time"),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_model_kind_time", "events", ["model", "kind", "time"])
    op.create_index("ix_events_time", "events", ["time"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _time("requested_at"),
        _time("decided_at", nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model", "version"],
            ["model_versions.model", "model_versions.version"],
            name="fk_approvals_model_model_versions",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.UniqueConstraint("model", "version", name="uq_approvals_model_version"),
    )
    op.create_table(
        "state",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("namespace", "key", name="pk_state"),
    )
    op.create_table(
        "monitoring_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        _time("created_at"),
        _time("window_start", nullable=True),
        _time("window_end", nullable=True),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        sa.Column("n_labelled", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("details_key", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model"], ["models.name"], name="fk_monitoring_reports_model_models"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_monitoring_reports"),
    )
    op.create_index(
        "ix_monitoring_reports_model_created_at", "monitoring_reports", ["model", "created_at"]
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
    )


def downgrade() -> None:
    for index, table in (
        ("ix_monitoring_reports_model_created_at", "monitoring_reports"),
        ("ix_events_time", "events"),
        ("ix_events_model_kind_time", "events"),
        ("ix_metrics_run_id_key_step", "metrics"),
        ("ix_run_datasets_dataset_hash", "run_datasets"),
        ("ix_runs_model_status", "runs"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "tokens",
        "monitoring_reports",
        "state",
        "approvals",
        "events",
        "aliases",
        "model_versions",
        "metrics",
        "run_datasets",
        "runs",
        "datasets",
        "models",
    ):
        op.drop_table(table)
