"""Price alerts and their history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from trademk.storage.migrations.triggers import create_updated_at_trigger, drop_updated_at_trigger
from trademk.storage.types import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("alerts", "alert_events")


def _base_columns(table: str) -> list[sa.schema.SchemaItem]:
    now = sa.text("CURRENT_TIMESTAMP")
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Double(), nullable=True),
        sa.Column("percent", sa.Double(), nullable=True),
        sa.Column("window_seconds", sa.Double(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("cooldown_seconds", sa.Double(), server_default="0", nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("trigger_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_triggered_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *_base_columns("alerts"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_alerts_created_by_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_alerts_symbol", "alerts", ["symbol"])
    op.create_table(
        "alert_events",
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("alert_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("reference_price", sa.Double(), nullable=True),
        sa.Column("change_pct", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fired_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(timezone=True), nullable=True),
        *_base_columns("alert_events"),
    )
    op.create_index("ix_alert_events_alert_id_fired_at", "alert_events", ["alert_id", "fired_at"])
    op.create_index("ix_alert_events_fired_at", "alert_events", ["fired_at"])
    for table in TABLES:
        create_updated_at_trigger(table)


def downgrade() -> None:
    for table in TABLES:
        drop_updated_at_trigger(table)
    op.drop_table("alert_events")
    op.drop_table("alerts")
