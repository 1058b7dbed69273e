"""Initial schema: users, symbols, configs, orders, positions.

Every table has a UUID id and created_at/updated_at. updated_at is kept current
by a trigger (PL/pgSQL on PostgreSQL, an AFTER UPDATE trigger on SQLite), so
even raw SQL updates move it.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from trademk.storage.migrations.triggers import (
    create_updated_at_function,
    create_updated_at_trigger,
    drop_updated_at_function,
    drop_updated_at_trigger,
)
from trademk.storage.types import ExactDecimal, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "symbols", "configs", "orders", "positions")


def _base_columns(table: str) -> list[sa.schema.SchemaItem]:
    now = sa.text("CURRENT_TIMESTAMP")
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def _money(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, ExactDecimal(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("role", sa.String(length=16), server_default="viewer", nullable=False),
        *_base_columns("users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "symbols",
        sa.Column("ticker", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("asset_type", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("metadata_json", sa.JSON(), nullable=False),
        *_base_columns("symbols"),
        sa.UniqueConstraint("ticker", name="uq_symbols_ticker"),
    )
    op.create_index("ix_symbols_asset_type", "symbols", ["asset_type"])
    op.create_table(
        "configs",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(length=64), server_default="global", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        *_base_columns("configs"),
        sa.UniqueConstraint("key", "scope", name="uq_configs_key_scope"),
    )
    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("venue_order_id", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("time_in_force", sa.String(length=8), nullable=False),
        _money("qty"),
        _money("price", nullable=True),
        _money("stop_price", nullable=True),
        _money("filled_qty"),
        _money("filled_avg_price", nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("strategy_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("submitted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("filled_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(timezone=True), nullable=True),
        *_base_columns("orders"),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_status_created_at", "orders", ["status", "created_at"])
    op.create_index("ix_orders_symbol_created_at", "orders", ["symbol", "created_at"])
    op.create_index("ix_orders_strategy_id", "orders", ["strategy_id"])
    op.create_index("ix_orders_venue_order_id", "orders", ["venue_order_id"])
    op.create_table(
        "positions",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("venue", sa.String(length=32), nullable=False),
        _money("qty"),
        _money("avg_price"),
        _money("realized_pnl"),
        _money("unrealized_pnl"),
        _money("last_price", nullable=True),
        _money("market_value"),
        _money("cost_basis"),
        sa.Column("last_price_updated", UTCDateTime(timezone=True), nullable=True),
        *_base_columns("positions"),
        sa.UniqueConstraint("symbol", "venue", name="uq_positions_symbol_venue"),
    )
    create_updated_at_function()
    for table in TABLES:
        create_updated_at_trigger(table)


def downgrade() -> None:
    for table in TABLES:
        drop_updated_at_trigger(table)
    drop_updated_at_function()
    for table in reversed(TABLES):
        op.drop_table(table)
