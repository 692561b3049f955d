"""Edge devices and the aggregate reports they send home.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edge_devices",
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("pinned_version", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_report_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["model"], ["models.name"], name="fk_edge_devices_model_models"),
        sa.PrimaryKeyConstraint("device", name="pk_edge_devices"),
    )
    op.create_table(
        "edge_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=True),
        sa.Column("window_end", sa.DateTime(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["device"], ["edge_devices.device"],
                                name="fk_edge_reports_device_edge_devices"),
        sa.ForeignKeyConstraint(["model"], ["models.name"], name="fk_edge_reports_model_models"),
        sa.PrimaryKeyConstraint("id", name="pk_edge_reports"),
        sa.UniqueConstraint("device", "seq", name="uq_edge_reports_device_seq"),
    )
    op.create_index("ix_edge_reports_model_id", "edge_reports", ["model", "id"])


def downgrade() -> None:
    op.drop_index("ix_edge_reports_model_id", table_name="edge_reports")
    op.drop_table("edge_reports")
    op.drop_table("edge_devices")
