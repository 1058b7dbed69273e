"""What a venue reports about its own state, for reconciliation (DESIGN.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademk.domain.orders import OrderSide, OrderStatus, OrderType, TimeInForce


@dataclass(frozen=True, slots=True)
class OrderReport:
    """The venue's view of one order."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    time_in_force: TimeInForce
    qty: Decimal
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    status: OrderStatus
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    ts_ns: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in (
            OrderStatus.SUBMITTED,
            OrderStatus.ACCEPTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.PENDING_CANCEL,
        )


@dataclass(frozen=True, slots=True)
class PositionReport:
    """The venue's view of one position: signed quantity (short < 0)."""

    symbol: str
    qty: Decimal
    avg_price: Decimal


@dataclass(frozen=True, slots=True)
class AccountReport:
    """Cash and equity at the venue, in the account currency."""

    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    currency: str = "USD"
