"""Orders and their lifecycle (DESIGN.md §3).

The lifecycle is a table (``ORDER_TRANSITIONS``) and ``Order.apply`` is the only
way an order changes: every event is checked against the table before anything
is touched, so an illegal event raises and leaves the order exactly as it was.

Quantities and prices are ``Decimal``. The average fill price is derived from
the exact running sum of ``qty * price`` over the fills, so it carries no
accumulated rounding: the only rounding is the final division, at the
precision of the active decimal context (28 significant digits by default).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from trademk.domain.errors import IllegalOrderTransition, InvariantViolation
from trademk.domain.fills import Fill, OrderSide
from trademk.domain.instruments import (
    require_positive,
    require_text,
    require_timestamp_ns,
)
from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderEventBase,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
)

__all__ = [
    "EVENT_STATUS",
    "OPEN_STATUSES",
    "ORDER_TRANSITIONS",
    "TERMINAL_STATUSES",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "TimeInForce",
    "can_transition",
]

_ZERO: Final = Decimal(0)


class OrderType(enum.StrEnum):
    """How the order's price is set."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(enum.StrEnum):
    """How long the order stays working."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(enum.StrEnum):
    """Where an order is in its lifecycle."""

    INITIALIZED = "initialized"
    DENIED = "denied"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELED = "canceled"
    EXPIRED = "expired"
    PENDING_CANCEL = "pending_cancel"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"


_S = OrderStatus
ORDER_TRANSITIONS: Final[Mapping[OrderStatus, frozenset[OrderStatus]]] = MappingProxyType(
    {
        _S.INITIALIZED: frozenset({_S.DENIED, _S.SUBMITTED}),
        _S.SUBMITTED: frozenset(
            {_S.ACCEPTED, _S.REJECTED, _S.CANCELED, _S.FILLED, _S.PARTIALLY_FILLED}
        ),
        _S.ACCEPTED: frozenset(
            {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.PENDING_CANCEL}
        ),
        _S.PARTIALLY_FILLED: frozenset(
            {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.PENDING_CANCEL}
        ),
        _S.PENDING_CANCEL: frozenset({_S.CANCELED, _S.FILLED, _S.PARTIALLY_FILLED}),
        _S.DENIED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.CANCELED: frozenset(),
        _S.EXPIRED: frozenset(),
        _S.FILLED: frozenset(),
    }
)
"""The only legal status changes; a status missing from a set is illegal."""
_TRANSITIONS: Final[dict[OrderStatus, frozenset[OrderStatus]]] = dict(ORDER_TRANSITIONS)

TERMINAL_STATUSES: Final = frozenset(s for s, nxt in ORDER_TRANSITIONS.items() if not nxt)
"""Statuses an order never leaves: DENIED, REJECTED, CANCELED, EXPIRED, FILLED."""

OPEN_STATUSES: Final = frozenset(
    {_S.SUBMITTED, _S.ACCEPTED, _S.PARTIALLY_FILLED, _S.PENDING_CANCEL}
)
"""Statuses in which the order may still trade at the venue."""

EVENT_STATUS: Final[Mapping[type[OrderEventBase], OrderStatus]] = MappingProxyType(
    {
        OrderDenied: _S.DENIED,
        OrderSubmitted: _S.SUBMITTED,
        OrderAccepted: _S.ACCEPTED,
        OrderRejected: _S.REJECTED,
        OrderCanceled: _S.CANCELED,
        OrderExpired: _S.EXPIRED,
        OrderPendingCancel: _S.PENDING_CANCEL,
    }
)
"""The status each event leads to. ``OrderFilled`` is absent: it leads to FILLED
when the cumulative quantity reaches the order quantity, else PARTIALLY_FILLED."""
_EVENT_STATUS: Final[dict[type[OrderEventBase], OrderStatus]] = dict(EVENT_STATUS)

# Which price fields each order type needs: (limit_price, stop_price).
_PRICE_FIELDS: Final[Mapping[OrderType, tuple[bool, bool]]] = MappingProxyType(
    {
        OrderType.MARKET: (False, False),
        OrderType.LIMIT: (True, False),
        OrderType.STOP: (False, True),
        OrderType.STOP_LIMIT: (True, True),
    }
)


def can_transition(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    """Whether the lifecycle table allows ``from_status -> to_status``."""
    return to_status in ORDER_TRANSITIONS[from_status]


def _check_price(
    order_type: OrderType, name: str, price: Decimal | None, required: bool
) -> Decimal | None:
    if required:
        if price is None:
            raise ValueError(f"a {order_type} order needs a {name}")
        return require_positive(name, price)
    if price is not None:
        raise ValueError(f"a {order_type} order must not have a {name} (got {price})")
    return None


class Order:
    """One order and its state, changed only by ``apply(event)``.

    Identity and terms (``client_order_id``, ``symbol``, ``side``, ``type``,
    ``qty``, prices, ``time_in_force``, ``strategy_id``, ``venue``,
    ``created_ns``) are fixed at construction. State (``status``,
    ``filled_qty``, ``avg_fill_price``, ``fees``, ``reason``,
    ``venue_order_id`` and the timestamps) is read-only from outside.
    """

    __slots__ = (
        "_accepted_ns",
        "_applied_trade_ids",
        "_canceled_ns",
        "_fees",
        "_fill_notional",
        "_filled_qty",
        "_last_fill_ns",
        "_reason",
        "_status",
        "_submitted_ns",
        "_updated_ns",
        "_venue_order_id",
        "client_order_id",
        "created_ns",
        "limit_price",
        "qty",
        "side",
        "stop_price",
        "strategy_id",
        "symbol",
        "time_in_force",
        "type",
        "venue",
    )

    def __init__(
        self,
        *,
        client_order_id: str,
        symbol: str,
        side: OrderSide,
        type: OrderType,
        qty: Decimal,
        venue: str,
        created_ns: int,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.DAY,
        strategy_id: str | None = None,
    ) -> None:
        self.client_order_id = require_text("client_order_id", client_order_id)
        self.symbol = require_text("symbol", symbol)
        self.venue = require_text("venue", venue)
        # Members pass as they are; anything else goes through the enum (and its error).
        self.side = side if side.__class__ is OrderSide else OrderSide(side)
        self.type = type if type.__class__ is OrderType else OrderType(type)
        self.time_in_force = (
            time_in_force if time_in_force.__class__ is TimeInForce else TimeInForce(time_in_force)
        )
        self.qty = require_positive("qty", qty)
        needs_limit, needs_stop = _PRICE_FIELDS[self.type]
        self.limit_price = _check_price(self.type, "limit_price", limit_price, needs_limit)
        self.stop_price = _check_price(self.type, "stop_price", stop_price, needs_stop)
        self.created_ns = require_timestamp_ns("created_ns", created_ns)
        self.strategy_id = strategy_id
        self._start_state()

    def _start_state(self) -> None:
        """The state of a new order: INITIALIZED, nothing filled."""
        self._status = OrderStatus.INITIALIZED
        self._venue_order_id: str | None = None
        self._filled_qty = _ZERO
        self._fill_notional = _ZERO
        self._fees = _ZERO
        self._reason: str | None = None
        self._submitted_ns: int | None = None
        self._accepted_ns: int | None = None
        self._last_fill_ns: int | None = None
        self._canceled_ns: int | None = None
        self._updated_ns = self.created_ns
        # None before the first fill, the one trade id after it, a set from the second
        # on: most orders fill once, and a set per order would be one more object for
        # the garbage collector to track on the hot path.
        self._applied_trade_ids: str | set[str] | None = None

    def copy_terms(self) -> Order:
        """A new INITIALIZED order with this order's identity and terms.

        The terms are copied as they are: they were validated when this order
        was built, so the copy skips the checks (a venue's own copy uses it).
        """
        copy = Order.__new__(Order)
        copy.client_order_id = self.client_order_id
        copy.symbol = self.symbol
        copy.venue = self.venue
        copy.side = self.side
        copy.type = self.type
        copy.time_in_force = self.time_in_force
        copy.qty = self.qty
        copy.limit_price = self.limit_price
        copy.stop_price = self.stop_price
        copy.created_ns = self.created_ns
        copy.strategy_id = self.strategy_id
        copy._start_state()
        return copy

    def __repr__(self) -> str:
        return (
            f"Order({self.client_order_id!r}, {self.side} {self.qty} {self.symbol} "
            f"{self.type}, status={self._status}, filled={self._filled_qty})"
        )

    # -- the only mutator -------------------------------------------------

    def apply(self, event: OrderEvent) -> bool:
        """Apply ``event``; returns False only for a fill whose trade id was already applied.

        Raises ``IllegalOrderTransition`` when the table forbids the status
        change, and ``InvariantViolation`` for an event of another order or a
        fill that would overfill or does not match the order. On any error the
        order is left unchanged.
        """
        if event.client_order_id != self.client_order_id:
            raise InvariantViolation(
                f"event {type(event).__name__} of order {event.client_order_id!r} "
                f"applied to order {self.client_order_id!r}"
            )
        if isinstance(event, OrderFilled):
            return self._apply_fill(event)
        target = _EVENT_STATUS.get(event.__class__)
        if target is None:
            raise TypeError(f"not an order event: {type(event).__name__}")
        if target not in _TRANSITIONS[self._status]:
            raise IllegalOrderTransition(self.client_order_id, self._status, target)
        self._status = target
        self._updated_ns = event.ts_ns
        self._record(event)
        return True

    def _check_transition(self, target: OrderStatus) -> None:
        if target not in _TRANSITIONS[self._status]:
            raise IllegalOrderTransition(self.client_order_id, self._status, target)

    def _record(self, event: OrderEvent) -> None:
        """Copy the event's payload onto the order (the status is already set)."""
        # Dispatch on the exact class: ``apply`` only admits the classes of EVENT_STATUS.
        if type(event) is OrderSubmitted:
            self._submitted_ns = event.ts_ns
        elif type(event) is OrderAccepted:
            self._accepted_ns = event.ts_ns
            self._venue_order_id = event.venue_order_id
        elif type(event) is OrderDenied or type(event) is OrderRejected:
            self._reason = event.reason
        elif type(event) is OrderCanceled:
            self._canceled_ns = event.ts_ns
            self._reason = event.reason or self._reason

    def _apply_fill(self, event: OrderFilled) -> bool:
        fill = event.fill
        trade_id = fill.trade_id
        applied = self._applied_trade_ids
        if applied is not None and (
            applied == trade_id if isinstance(applied, str) else trade_id in applied
        ):
            return False
        self._check_fill_matches(fill)
        filled = self._filled_qty + fill.qty
        if filled > self.qty:
            raise InvariantViolation(
                f"order {self.client_order_id!r}: fill {fill.trade_id!r} of {fill.qty} would "
                f"overfill ({self._filled_qty} already filled of {self.qty})"
            )
        target = OrderStatus.FILLED if filled == self.qty else OrderStatus.PARTIALLY_FILLED
        self._check_transition(target)
        self._status = target
        self._filled_qty = filled
        self._fill_notional += fill.qty * fill.price
        self._fees += fill.fee
        self._venue_order_id = fill.venue_order_id
        self._last_fill_ns = fill.ts_ns
        self._updated_ns = event.ts_ns
        if applied is None:
            self._applied_trade_ids = trade_id
        elif isinstance(applied, str):
            self._applied_trade_ids = {applied, trade_id}
        else:
            applied.add(trade_id)
        return True

    def _check_fill_matches(self, fill: Fill) -> None:
        if (
            fill.symbol == self.symbol
            and fill.side == self.side
            and fill.venue == self.venue
            and (self._venue_order_id is None or fill.venue_order_id == self._venue_order_id)
        ):
            return
        mismatches = [
            f"{name} {theirs!r} != {ours!r}"
            for name, theirs, ours in (
                ("symbol", fill.symbol, self.symbol),
                ("side", fill.side, self.side),
                ("venue", fill.venue, self.venue),
            )
            if theirs != ours
        ]
        if self._venue_order_id is not None and fill.venue_order_id != self._venue_order_id:
            mismatches.append(f"venue_order_id {fill.venue_order_id!r} != {self._venue_order_id!r}")
        if mismatches:
            raise InvariantViolation(
                f"order {self.client_order_id!r}: fill {fill.trade_id!r} does not match the "
                f"order: {'; '.join(mismatches)}"
            )

    # -- state, read-only ---------------------------------------------------

    @property
    def status(self) -> OrderStatus:
        """The current lifecycle status."""
        return self._status

    @property
    def venue_order_id(self) -> str | None:
        """The venue's id, known once the venue accepted or filled the order."""
        return self._venue_order_id

    @property
    def filled_qty(self) -> Decimal:
        """Cumulative filled quantity (unsigned)."""
        return self._filled_qty

    @property
    def avg_fill_price(self) -> Decimal | None:
        """Volume-weighted average fill price, or None before the first fill."""
        if self._filled_qty == 0:
            return None
        return self._fill_notional / self._filled_qty

    @property
    def fees(self) -> Decimal:
        """Total fees paid on this order's fills, in the quote currency."""
        return self._fees

    @property
    def reason(self) -> str | None:
        """Why the order was denied, rejected or canceled, if it was."""
        return self._reason

    @property
    def submitted_ns(self) -> int | None:
        """When the order was sent to the venue."""
        return self._submitted_ns

    @property
    def accepted_ns(self) -> int | None:
        """When the venue acknowledged the order."""
        return self._accepted_ns

    @property
    def last_fill_ns(self) -> int | None:
        """Execution time of the latest fill."""
        return self._last_fill_ns

    @property
    def canceled_ns(self) -> int | None:
        """When the cancel was confirmed."""
        return self._canceled_ns

    @property
    def updated_ns(self) -> int:
        """Time of the latest event applied (``created_ns`` before any)."""
        return self._updated_ns

    @property
    def applied_trade_ids(self) -> frozenset[str]:
        """Trade ids of the fills already applied."""
        applied = self._applied_trade_ids
        if applied is None:
            return frozenset()
        return frozenset((applied,)) if isinstance(applied, str) else frozenset(applied)

    # -- derived --------------------------------------------------------------

    @property
    def is_terminal(self) -> bool:
        """True once the order can never change again."""
        return self._status in TERMINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """True while the order is at the venue and may still trade."""
        return self._status in OPEN_STATUSES

    @property
    def leaves_qty(self) -> Decimal:
        """Quantity still working: ``qty - filled_qty`` while not terminal, else zero."""
        return _ZERO if self.is_terminal else self.qty - self._filled_qty

    @property
    def signed_qty(self) -> Decimal:
        """``qty``, negative for a sell."""
        return self.qty * self.side.sign

    @property
    def signed_filled_qty(self) -> Decimal:
        """``filled_qty``, negative for a sell: the position change so far."""
        return self._filled_qty * self.side.sign

    @property
    def signed_leaves_qty(self) -> Decimal:
        """``leaves_qty``, negative for a sell: the position change still pending."""
        return self.leaves_qty * self.side.sign

    @property
    def filled_notional(self) -> Decimal:
        """Exact sum of ``qty * price`` over the fills, before fees."""
        return self._fill_notional

    def notional_at(self, price: Decimal) -> Decimal:
        """``qty * price``: the order's full value at ``price``."""
        return self.qty * require_positive("price", price)

    def leaves_notional_at(self, price: Decimal) -> Decimal:
        """``leaves_qty * price``: the value still working at ``price``."""
        return self.leaves_qty * require_positive("price", price)

    @property
    def limit_notional(self) -> Decimal | None:
        """``qty * limit_price`` for limit orders, else None."""
        return None if self.limit_price is None else self.qty * self.limit_price
