"""Wire schemas of Alpaca's trading API (REST v2 and the ``trade_updates`` stream).

Alpaca sends numbers as strings and times as RFC 3339 strings (up to
nanoseconds). The structs below hold the wire shape exactly; the functions turn
it into domain values: ``OrderReport``, ``PositionReport``, ``AccountReport``,
and the status an Alpaca order is in, in our lifecycle's terms. The other way,
``build_order_request`` turns a domain ``Order`` into alpaca-py's request.

Alpaca has more order statuses than our lifecycle; ``ORDER_STATUS`` maps each
one, and an unknown status raises instead of being guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

import msgspec

from trademk.domain.errors import RejectedError
from trademk.domain.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from trademk.domain.venue_reports import AccountReport, OrderReport, PositionReport
from trademk.venues.alpaca import alpaca_sdk as sdk
from trademk.venues.alpaca.data_schemas import parse_rfc3339_ns
from trademk.venues.alpaca.symbols import from_alpaca_symbol, is_alpaca_crypto

_ZERO: Final = Decimal(0)


class AlpacaWireError(ValueError):
    """A payload that does not have the shape Alpaca documents."""


class AlpacaOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An Alpaca order object (``/v2/orders`` and the ``order`` of a trade update)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    status: str
    created_at: str
    updated_at: str | None = None
    submitted_at: str | None = None
    filled_at: str | None = None
    expired_at: str | None = None
    canceled_at: str | None = None
    failed_at: str | None = None
    replaced_at: str | None = None
    replaced_by: str | None = None
    asset_id: str | None = None
    asset_class: str | None = None
    notional: str | None = None
    qty: str | None = None
    filled_qty: str = "0"
    filled_avg_price: str | None = None
    order_class: str = "simple"
    limit_price: str | None = None
    stop_price: str | None = None
    extended_hours: bool = False

    @property
    def filled(self) -> Decimal:
        """Cumulative filled quantity."""
        return decimal_field("filled_qty", self.filled_qty) or _ZERO

    @property
    def avg_price(self) -> Decimal | None:
        """Average fill price, or None before the first fill (Alpaca may send "0")."""
        price = decimal_field("filled_avg_price", self.filled_avg_price)
        return price if price else None

    @property
    def quantity(self) -> Decimal:
        """Ordered quantity; a notional order (no ``qty``) reports what it filled."""
        return decimal_field("qty", self.qty) or self.filled

    @property
    def submitted_ns(self) -> int:
        """When Alpaca received the order (``submitted_at``, else ``created_at``)."""
        return parse_rfc3339_ns(self.submitted_at or self.created_at)

    @property
    def updated_ns(self) -> int:
        """Time of the order's latest change."""
        return parse_rfc3339_ns(self.updated_at or self.submitted_at or self.created_at)

    @property
    def status_ns(self) -> int:
        """When the order reached its current status, as precisely as Alpaca says."""
        by_status = {
            "filled": self.filled_at,
            "canceled": self.canceled_at,
            "expired": self.expired_at,
            "rejected": self.failed_at,
            "replaced": self.replaced_at,
        }.get(self.status)
        return parse_rfc3339_ns(by_status) if by_status else self.updated_ns

    @property
    def domain_status(self) -> OrderStatus:
        """The order's status in our lifecycle (see ``domain_status``)."""
        return domain_status(self.status, self.filled, self.quantity)


class TradeUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """The ``data`` of a ``trade_updates`` stream message."""

    event: str
    order: AlpacaOrder
    timestamp: str | None = None
    execution_id: str | None = None
    price: str | None = None
    qty: str | None = None
    position_qty: str | None = None

    @property
    def is_fill(self) -> bool:
        return self.event in FILL_EVENTS

    @property
    def ts_ns(self) -> int:
        """The event time: ``timestamp``, else the order's last update."""
        return parse_rfc3339_ns(self.timestamp) if self.timestamp else self.order.updated_ns

    @property
    def fill_price(self) -> Decimal | None:
        return decimal_field("price", self.price)

    @property
    def fill_qty(self) -> Decimal | None:
        return decimal_field("qty", self.qty)


class AlpacaPosition(msgspec.Struct, frozen=True, kw_only=True):
    """An entry of ``GET /v2/positions``; crypto symbols come without the slash."""

    symbol: str
    qty: str
    avg_entry_price: str
    side: str = "long"
    asset_class: str | None = None


class AlpacaAccount(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of ``GET /v2/account`` that we use."""

    cash: str
    equity: str
    buying_power: str
    currency: str = "USD"


FILL_EVENTS: Final = frozenset({"fill", "partial_fill"})

_S = OrderStatus
ORDER_STATUS: Final[Mapping[str, OrderStatus]] = MappingProxyType(
    {
        # Received, not yet acknowledged for execution.
        "pending_new": _S.SUBMITTED,
        # Working (ACCEPTED, or PARTIALLY_FILLED once something filled).
        "accepted": _S.ACCEPTED,
        "new": _S.ACCEPTED,
        "accepted_for_bidding": _S.ACCEPTED,
        "pending_replace": _S.ACCEPTED,
        "stopped": _S.ACCEPTED,
        "suspended": _S.ACCEPTED,
        "held": _S.ACCEPTED,
        "calculated": _S.ACCEPTED,
        "partially_filled": _S.PARTIALLY_FILLED,
        "filled": _S.FILLED,
        "pending_cancel": _S.PENDING_CANCEL,
        "canceled": _S.CANCELED,
        # A replaced order is dead: its replacement is another order.
        "replaced": _S.CANCELED,
        "expired": _S.EXPIRED,
        # Done executing for the day: nothing more will happen to it today.
        "done_for_day": _S.EXPIRED,
        "rejected": _S.REJECTED,
    }
)
"""Each Alpaca order status in our lifecycle's terms."""

_WORKING: Final = frozenset({_S.ACCEPTED})

ORDER_SIDE: Final[Mapping[str, OrderSide]] = MappingProxyType(
    {"buy": OrderSide.BUY, "sell": OrderSide.SELL}
)

ORDER_TYPE: Final[Mapping[str, OrderType]] = MappingProxyType(
    {
        "market": OrderType.MARKET,
        "limit": OrderType.LIMIT,
        "stop": OrderType.STOP,
        "stop_limit": OrderType.STOP_LIMIT,
        # A trailing stop is a stop whose ``stop_price`` Alpaca moves with the market.
        "trailing_stop": OrderType.STOP,
    }
)

TIME_IN_FORCE: Final[Mapping[str, TimeInForce]] = MappingProxyType(
    {
        "day": TimeInForce.DAY,
        "gtc": TimeInForce.GTC,
        "ioc": TimeInForce.IOC,
        "fok": TimeInForce.FOK,
        # At-the-open and at-the-close orders live within one session.
        "opg": TimeInForce.DAY,
        "cls": TimeInForce.DAY,
    }
)


def _lookup(table: Mapping[str, Any], kind: str, value: str) -> Any:
    try:
        return table[value]
    except KeyError:
        raise AlpacaWireError(f"unknown Alpaca {kind} {value!r}") from None


def domain_status(alpaca_status: str, filled_qty: Decimal, qty: Decimal) -> OrderStatus:
    """Our status for an Alpaca status, given what has filled.

    A working order with fills is PARTIALLY_FILLED; a ``calculated`` or
    ``done_for_day`` order that filled completely is FILLED.
    """
    status: OrderStatus = _lookup(ORDER_STATUS, "order status", alpaca_status)
    if filled_qty > 0 and qty > 0 and filled_qty >= qty:
        return _S.FILLED if status in (_WORKING | {_S.EXPIRED, _S.PARTIALLY_FILLED}) else status
    if status in _WORKING and filled_qty > 0:
        return _S.PARTIALLY_FILLED
    return status


def decimal_field(name: str, value: object) -> Decimal | None:
    """A wire number (string, or a JSON number) as a Decimal; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AlpacaWireError(f"{name} must be a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise AlpacaWireError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise AlpacaWireError(f"{name} must be finite, got {value!r}")
    return number


def _convert(raw: object, kind: type[Any], what: str) -> Any:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as err:
        raise AlpacaWireError(f"malformed Alpaca {what}: {err}") from None


def parse_order(raw: object) -> AlpacaOrder:
    """An ``AlpacaOrder`` from a decoded JSON object."""
    order: AlpacaOrder = _convert(raw, AlpacaOrder, "order")
    return order


def parse_orders(raw: object) -> list[AlpacaOrder]:
    """A list of orders from a decoded ``GET /v2/orders`` answer."""
    orders: list[AlpacaOrder] = _convert(raw, list[AlpacaOrder], "order list")
    return orders


def parse_trade_update(message: object) -> TradeUpdate:
    """The trade update in a decoded stream message ``{"stream": ..., "data": {...}}``."""
    if not isinstance(message, dict) or message.get("stream") != "trade_updates":
        raise AlpacaWireError(f"not a trade_updates message: {message!r:.200}")
    update: TradeUpdate = _convert(message.get("data"), TradeUpdate, "trade update")
    return update


def order_report(order: AlpacaOrder, symbol: str | None = None) -> OrderReport:
    """Our ``OrderReport`` for an Alpaca order; ``symbol`` overrides the mapped symbol."""
    return OrderReport(
        client_order_id=order.client_order_id,
        venue_order_id=order.id,
        symbol=symbol or from_alpaca_symbol(order.symbol, order.asset_class),
        side=_lookup(ORDER_SIDE, "order side", order.side),
        type=_lookup(ORDER_TYPE, "order type", order.type),
        time_in_force=_lookup(TIME_IN_FORCE, "time in force", order.time_in_force),
        qty=order.quantity,
        filled_qty=order.filled,
        avg_fill_price=order.avg_price,
        status=order.domain_status,
        limit_price=decimal_field("limit_price", order.limit_price),
        stop_price=decimal_field("stop_price", order.stop_price),
        ts_ns=order.updated_ns,
    )


def position_reports(raw: object) -> list[PositionReport]:
    """Our positions for ``GET /v2/positions``, merging Alpaca pairs that map to one symbol.

    The quantity is signed (short < 0) and the average price is the
    quantity-weighted average entry price of the merged pairs.
    """
    merged: dict[str, tuple[Decimal, Decimal]] = {}
    for position in _convert(raw, list[AlpacaPosition], "position list"):
        qty = decimal_field("qty", position.qty) or _ZERO
        if position.side == "short" and qty > 0:
            qty = -qty
        price = decimal_field("avg_entry_price", position.avg_entry_price) or _ZERO
        symbol = from_alpaca_symbol(position.symbol, position.asset_class)
        held, cost = merged.get(symbol, (_ZERO, _ZERO))
        merged[symbol] = (held + qty, cost + qty * price)
    return [
        PositionReport(symbol=symbol, qty=qty, avg_price=cost / qty if qty else _ZERO)
        for symbol, (qty, cost) in sorted(merged.items())
    ]


def account_report(raw: object) -> AccountReport:
    """Our ``AccountReport`` for ``GET /v2/account``."""
    account: AlpacaAccount = _convert(raw, AlpacaAccount, "account")
    return AccountReport(
        cash=decimal_field("cash", account.cash) or _ZERO,
        equity=decimal_field("equity", account.equity) or _ZERO,
        buying_power=decimal_field("buying_power", account.buying_power) or _ZERO,
        currency=account.currency,
    )


# -- domain -> wire -------------------------------------------------------------------

_CRYPTO_TIF: Final = {TimeInForce.DAY: "gtc", TimeInForce.GTC: "gtc", TimeInForce.IOC: "ioc"}
_REQUEST_CLASS: Final[Mapping[OrderType, type[sdk.OrderRequest]]] = MappingProxyType(
    {
        OrderType.MARKET: sdk.MarketOrderRequest,
        OrderType.LIMIT: sdk.LimitOrderRequest,
        OrderType.STOP: sdk.StopOrderRequest,
        OrderType.STOP_LIMIT: sdk.StopLimitOrderRequest,
    }
)


def _wire_number(name: str, value: Decimal) -> float:
    """``value`` as the float alpaca-py's request models take, refusing any rounding."""
    number = float(value)
    if Decimal(repr(number)) != value:
        raise RejectedError(f"{name} {value} cannot be sent to Alpaca exactly")
    return number


def build_order_request(order: Order, alpaca_symbol: str) -> sdk.OrderRequest:
    """The alpaca-py request for ``order`` under Alpaca's symbol; ``RejectedError`` if unfit.

    Crypto is ``gtc`` (a DAY order becomes ``gtc``: crypto trades around the
    clock) or ``ioc``; FOK and plain stop orders do not exist for crypto there.
    """
    tif = str(order.time_in_force)
    if is_alpaca_crypto(alpaca_symbol):
        if order.type is OrderType.STOP:
            raise RejectedError("Alpaca crypto supports market, limit and stop_limit orders only")
        if order.time_in_force not in _CRYPTO_TIF:
            raise RejectedError(f"Alpaca crypto supports time in force gtc and ioc only, not {tif}")
        tif = _CRYPTO_TIF[order.time_in_force]
    fields: dict[str, Any] = {
        "symbol": alpaca_symbol,
        "qty": _wire_number("qty", order.qty),
        "side": sdk.OrderSide(str(order.side)),
        "time_in_force": sdk.TimeInForce(tif),
        "client_order_id": order.client_order_id,
    }
    if order.limit_price is not None:
        fields["limit_price"] = _wire_number("limit_price", order.limit_price)
    if order.stop_price is not None:
        fields["stop_price"] = _wire_number("stop_price", order.stop_price)
    return _REQUEST_CLASS[order.type](**fields)
