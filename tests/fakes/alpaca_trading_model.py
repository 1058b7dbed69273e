"""Orders, positions and quotes of the fake Alpaca trading API, with Alpaca's JSON shapes.

Numbers go out as strings and times as RFC 3339 strings, as Alpaca sends them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

OPEN_STATUSES = frozenset(
    {
        "new",
        "accepted",
        "pending_new",
        "partially_filled",
        "pending_cancel",
        "pending_replace",
        "accepted_for_bidding",
        "held",
        "calculated",
        "stopped",
        "suspended",
    }
)
WORKING_STATUSES = frozenset({"new", "partially_filled"})
ZERO = Decimal(0)


class BookError(Exception):
    """An error answer: HTTP status plus Alpaca's ``{"code", "message"}`` body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message}


def rfc3339(ns: int, digits: int = 6) -> str:
    """``2024-01-02T03:04:05.123456Z`` (``digits`` fraction digits) for UTC nanoseconds."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{str(nanos).zfill(9)[:digits]}Z"


def text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def number(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise BookError(422, 40010001, f"{name} must be a number") from None
    if not number.is_finite() or number <= 0:
        raise BookError(422, 40010001, f"{name} must be > 0")
    return number


@dataclass
class Quote:
    bid: Decimal
    ask: Decimal
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None


@dataclass
class FakePosition:
    qty: Decimal = ZERO
    avg_price: Decimal = ZERO

    def apply(self, signed_qty: Decimal, price: Decimal) -> None:
        new_qty = self.qty + signed_qty
        if self.qty == 0 or (self.qty > 0) == (signed_qty > 0):
            self.avg_price = (self.qty * self.avg_price + signed_qty * price) / new_qty
        elif new_qty != 0 and (new_qty > 0) != (self.qty > 0):
            self.avg_price = price  # flipped: the rest opens at this price
        self.qty = new_qty
        if new_qty == 0:
            self.avg_price = ZERO


@dataclass
class FakeOrder:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    created_ns: int
    status: str = "accepted"
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO
    updated_ns: int = 0
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    failed_ns: int | None = None
    stop_triggered: bool = False
    executions: list[str] = field(default_factory=list)

    @property
    def is_crypto(self) -> bool:
        return "/" in self.symbol

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> dict[str, Any]:
        """The order object exactly as Alpaca's REST API and trade updates carry it."""

        def at(ns: int | None) -> str | None:
            return None if ns is None else rfc3339(ns)

        avg = self.filled_notional / self.filled_qty if self.filled_qty else None
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": at(self.created_ns),
            "updated_at": at(self.updated_ns or self.created_ns),
            "submitted_at": at(self.created_ns),
            "filled_at": at(self.filled_ns),
            "expired_at": at(self.expired_ns),
            "expires_at": None,
            "canceled_at": at(self.canceled_ns),
            "failed_at": at(self.failed_ns),
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-asset:{self.symbol}")),
            "symbol": self.symbol,
            "asset_class": "crypto" if self.is_crypto else "us_equity",
            "notional": None,
            "qty": text(self.qty),
            "filled_qty": text(self.filled_qty),
            "filled_avg_price": text(avg),
            "order_class": "simple",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": text(self.limit_price),
            "stop_price": text(self.stop_price),
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }
