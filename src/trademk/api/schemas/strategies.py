"""API types for strategy instances, their classes, performance and exposure."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trademk.engine.interval_bars import STRATEGY_INTERVALS
from trademk.storage.strategy_repository import StrategyValues

ParamScalar = bool | int | float | str
MAX_PARAMS = 64
MAX_SYMBOLS = 20
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]*$"


class StrategyIn(BaseModel):
    """A strategy instance to create, or the full new definition of one (PUT).

    ``strategy_class`` is a registered strategy (``GET /api/v1/strategies/classes``);
    ``params`` its parameters (missing ones take their defaults, each must be in its
    range); ``symbols`` come from the universe; ``interval`` is the bar length it
    decides on; ``capital_allocation`` the starting cash of its own book, which sizes
    its entries with ``sizing`` (``all_in``, ``fraction:0.5``, ``units:2``,
    ``cash:1000``). ``enabled`` paper strategies run at once and resume after a
    restart; a ``live`` strategy is never enabled here, only by ``POST .../start``.
    """

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "name": "sma-btc-1m",
                    "strategy_class": "sma_cross",
                    "params": {"fast": 5, "slow": 20},
                    "symbols": ["BTCUSDT"],
                    "interval": "1m",
                    "capital_allocation": "5000",
                    "sizing": "fraction:0.5",
                    "enabled": True,
                    "mode": "paper",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=64, pattern=_NAME_PATTERN)
    strategy_class: str = Field(min_length=1, max_length=64, examples=["sma_cross"])
    params: dict[str, ParamScalar] = Field(default_factory=dict, max_length=MAX_PARAMS)
    symbols: list[str] = Field(min_length=1, max_length=MAX_SYMBOLS)
    interval: str = Field(
        default="1m", max_length=8, description=f"One of {', '.join(STRATEGY_INTERVALS)}"
    )
    capital_allocation: Decimal = Field(gt=0, le=Decimal("1e12"), decimal_places=8)
    sizing: str = Field(default="all_in", min_length=1, max_length=32)
    enabled: bool = False
    mode: Literal["paper", "live"] = "paper"

    def values(self) -> StrategyValues:
        return StrategyValues(
            name=self.name.strip(),
            strategy_class=self.strategy_class,
            symbols=[symbol.strip() for symbol in self.symbols],
            interval=self.interval,
            capital_allocation=self.capital_allocation,
            params=dict(self.params),
            sizing=self.sizing,
            enabled=self.enabled,
            mode=self.mode,
        )


class StrategyOut(BaseModel):
    """A stored strategy instance and what it is doing (``running``, ``stopped``, ``error``)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    strategy_class: str
    params: dict[str, ParamScalar]
    symbols: list[str]
    interval: str
    capital_allocation: Decimal
    sizing: str
    enabled: bool
    mode: str
    state: str
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class ParamOut(BaseModel):
    """One parameter of a strategy class."""

    name: str
    type: str
    default: ParamScalar
    low: float | None
    high: float | None
    choices: list[ParamScalar] | None
    doc: str


class StrategyClassOut(BaseModel):
    """A registered strategy class: what it does and its parameters."""

    name: str
    description: str
    signals: bool = Field(description="Decides with signal columns (runs on the fast path)")
    params: list[ParamOut]


class StrategyPositionOut(BaseModel):
    """An open position of a strategy's own book."""

    symbol: str
    qty: Decimal
    avg_price: Decimal
    last_price: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


class PerformanceOut(BaseModel):
    """A strategy's results from its own fills, marked at the latest prices.

    ``trades`` are round trips (flat → position → flat, or a flip); ``win_rate`` is
    the fraction of them with a positive P&L after fees (null before the first);
    ``max_drawdown`` the largest fall of equity from a previous peak as a fraction,
    sampled at every fill and now.
    """

    strategy_id: uuid.UUID
    name: str
    state: str
    capital_allocation: Decimal
    cash: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    total_pnl: Decimal
    return_pct: Decimal
    trades: int
    winning_trades: int
    losing_trades: int
    win_rate: Decimal | None
    max_drawdown: Decimal
    max_drawdown_amount: Decimal
    fills: int
    orders: int
    orders_by_status: dict[str, int]
    positions: list[StrategyPositionOut]


class StrategyHoldingOut(BaseModel):
    """What one strategy holds in a symbol."""

    strategy_id: str
    name: str
    qty: Decimal
    exposure: Decimal


class SymbolExposureOut(BaseModel):
    """All strategies together in one symbol, and the account's own position."""

    symbol: str
    net_qty: Decimal
    last_price: Decimal | None
    net_exposure: Decimal
    account_qty: Decimal
    strategies: list[StrategyHoldingOut]
