"""Application database models (SQLAlchemy 2). Separate from domain and API types."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String, Text, UniqueConstraint, Uuid, false, func, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trademk.storage.types import ExactDecimal, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Every table has a UUID id and created/updated timestamps kept by the database."""

    type_annotation_map = {datetime: UTCDateTime(), Decimal: ExactDecimal()}
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), onupdate=func.now(), nullable=False
    )


Base.metadata.naming_convention = NAMING_CONVENTION


class User(Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    role: Mapped[str] = mapped_column(String(16), default="viewer", server_default="viewer")


class Symbol(Base):
    __tablename__ = "symbols"

    ticker: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    exchange: Mapped[str] = mapped_column(String(32))
    asset_type: Mapped[str] = mapped_column(String(16), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConfigEntry(Base):
    __tablename__ = "configs"
    __table_args__ = (UniqueConstraint("key", "scope"),)

    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[Any] = mapped_column(JSON)
    scope: Mapped[str] = mapped_column(String(64), default="global", server_default="global")
    description: Mapped[str | None] = mapped_column(Text)


class OrderRecord(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index("ix_orders_symbol_created_at", "symbol", "created_at"),
    )

    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    venue: Mapped[str] = mapped_column(String(32))
    venue_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(16))
    time_in_force: Mapped[str] = mapped_column(String(8))
    qty: Mapped[Decimal]
    price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    filled_qty: Mapped[Decimal] = mapped_column(default=Decimal(0))
    filled_avg_price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(24))
    strategy_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None]
    filled_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class PositionRecord(Base):
    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("symbol", "venue"),)

    symbol: Mapped[str] = mapped_column(String(32))
    venue: Mapped[str] = mapped_column(String(32))
    qty: Mapped[Decimal] = mapped_column(default=Decimal(0))
    avg_price: Mapped[Decimal] = mapped_column(default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    unrealized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    last_price: Mapped[Decimal | None]
    market_value: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_basis: Mapped[Decimal] = mapped_column(default=Decimal(0))
    last_price_updated: Mapped[datetime | None]


class FillRecord(Base):
    """One execution. ``(venue, trade_id)`` is unique so a replayed fill is stored once."""

    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("venue", "trade_id"),
        Index("ix_fills_symbol_ts", "symbol", "ts"),
    )

    client_order_id: Mapped[str] = mapped_column(String(64), index=True)
    venue_order_id: Mapped[str] = mapped_column(String(64))
    trade_id: Mapped[str] = mapped_column(String(64))
    venue: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    liquidity: Mapped[str | None] = mapped_column(String(8))
    strategy_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ts: Mapped[datetime]
