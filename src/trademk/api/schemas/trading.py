"""API types for trading: signals, orders, positions, portfolio, risk."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from trademk.domain.orders import OrderSide, OrderType, TimeInForce

ClientOrderId = Field(
    default=None,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
    description="Your id for the order (idempotency key); generated when omitted",
)


class SignalIn(BaseModel):
    """A trade request. Money and quantities are decimals (send strings for exactness)."""

    symbol: str = Field(min_length=1, max_length=32, examples=["BTCUSDT"])
    side: OrderSide
    qty: Decimal = Field(gt=0, max_digits=28, decimal_places=12, examples=["0.01"])
    reason: str | None = Field(default=None, max_length=500)
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = Field(default=None, gt=0, max_digits=28, decimal_places=12)
    stop_price: Decimal | None = Field(default=None, gt=0, max_digits=28, decimal_places=12)
    time_in_force: TimeInForce | None = None
    client_order_id: str | None = ClientOrderId

    @model_validator(mode="after")
    def _prices_match_type(self) -> SignalIn:
        needs_limit = self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit and self.limit_price is None:
            raise ValueError(f"a {self.type} order needs limit_price")
        if needs_stop and self.stop_price is None:
            raise ValueError(f"a {self.type} order needs stop_price")
        if not needs_limit and self.limit_price is not None:
            raise ValueError(f"a {self.type} order takes no limit_price")
        if not needs_stop and self.stop_price is not None:
            raise ValueError(f"a {self.type} order takes no stop_price")
        return self


class SignalAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    client_order_id: str
    symbol: str
    detail: str = "queued for risk checks and execution; follow it at /api/v1/trading/orders/{id}"


class OrderOut(BaseModel):
    id: str
    client_order_id: str
    venue: str
    venue_order_id: str | None
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    price: Decimal | None = Field(description="Limit price")
    stop_price: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    status: str
    strategy_id: str | None
    reason: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    filled_at: datetime | None
    cancelled_at: datetime | None


class PositionOut(BaseModel):
    symbol: str
    venue: str
    qty: Decimal
    side: Literal["long", "short", "flat"]
    avg_price: Decimal
    last_price: Decimal | None
    market_value: Decimal
    cost_basis: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    fees: Decimal
    last_price_updated: datetime | None


class PortfolioOut(BaseModel):
    currency: str
    starting_cash: Decimal
    cash: Decimal
    equity: Decimal
    market_value: Decimal = Field(description="Sum of the positions' signed market values")
    gross_exposure: Decimal
    net_exposure: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    total_pnl: Decimal
    open_positions: int
    exposure_by_symbol: dict[str, Decimal]
    positions: list[PositionOut]


class TradingStateOut(BaseModel):
    state: Literal["active", "reducing", "halted"]
    reason: str
    venue: str
    open_orders: int
    denials_by_rule: dict[str, int]


class HaltIn(BaseModel):
    reason: str = Field(default="halted by an operator", min_length=1, max_length=500)
    cancel_open_orders: bool = True


class HaltOut(TradingStateOut):
    canceled_orders: int
