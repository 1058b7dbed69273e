"""Strategy instances.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from trademk.storage.migrations.triggers import create_updated_at_trigger, drop_updated_at_trigger
from trademk.storage.types import ExactDecimal, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    now = sa.text("CURRENT_TIMESTAMP")
    op.create_table(
        "strategies",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("strategy_class", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("capital_allocation", ExactDecimal(), nullable=False),
        sa.Column("sizing", sa.String(length=32), server_default="all_in", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("mode", sa.String(length=8), server_default="paper", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="stopped", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_strategies"),
        sa.UniqueConstraint("name", name="uq_strategies_name"),
    )
    create_updated_at_trigger("strategies")


def downgrade() -> None:
    drop_updated_at_trigger("strategies")
    op.drop_table("strategies")
