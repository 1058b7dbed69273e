"""Strategy instances: which strategy class runs where, with what, and whether it runs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from trademk.storage.models import Base


class StrategyRecord(Base):
    """One configured strategy instance.

    ``strategy_class`` is a registered strategy name (``sma_cross``);
    ``params`` its validated parameter values; ``capital_allocation`` the
    starting cash of its own book. ``enabled`` says it should run (paper
    strategies are restarted with the platform; live ones never are);
    ``state`` is what it is doing (``running``, ``stopped``, ``error``) and
    ``last_error`` why it last failed.
    """

    __tablename__ = "strategies"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    strategy_class: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    symbols: Mapped[list[str]] = mapped_column(JSON, default=list)
    interval: Mapped[str] = mapped_column(String(8))
    capital_allocation: Mapped[Decimal]
    sizing: Mapped[str] = mapped_column(String(32), default="all_in", server_default="all_in")
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    mode: Mapped[str] = mapped_column(String(8), default="paper", server_default="paper")
    state: Mapped[str] = mapped_column(String(16), default="stopped", server_default="stopped")
    last_error: Mapped[str | None] = mapped_column(Text)
