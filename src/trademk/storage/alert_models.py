"""Price alerts and their history.

An alert event keeps a copy of what the alert was (name, symbol, condition) so
the history still reads correctly after the alert is changed or deleted; it
refers to its alert by id without a foreign key for the same reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from trademk.storage.models import Base


class AlertRecord(Base):
    """One price alert: its rule, webhook, whether it is active, and how often it fired."""

    __tablename__ = "alerts"

    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    condition: Mapped[str] = mapped_column(String(16))
    level: Mapped[float | None] = mapped_column(Double)
    percent: Mapped[float | None] = mapped_column(Double)
    window_seconds: Mapped[float | None] = mapped_column(Double)
    mode: Mapped[str] = mapped_column(String(16))
    cooldown_seconds: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    trigger_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_triggered_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )


class AlertEventRecord(Base):
    """One firing: when, at what price, and what became of its webhook delivery."""

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("ix_alert_events_alert_id_fired_at", "alert_id", "fired_at"),
        Index("ix_alert_events_fired_at", "fired_at"),
    )

    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    alert_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    symbol: Mapped[str] = mapped_column(String(32))
    condition: Mapped[str] = mapped_column(String(16))
    price: Mapped[float] = mapped_column(Double)
    reference_price: Mapped[float | None] = mapped_column(Double)
    change_pct: Mapped[float | None] = mapped_column(Double)
    message: Mapped[str] = mapped_column(Text)
    fired_at: Mapped[datetime]
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    delivery_status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
