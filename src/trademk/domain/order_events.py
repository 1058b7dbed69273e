"""Order events: everything that can happen to an order, as immutable values.

``Order.apply`` (in ``trademk.domain.orders``) is the only consumer that changes
state; which status each event leads to is the table ``EVENT_STATUS`` there
(``OrderFilled`` leads to PARTIALLY_FILLED or FILLED depending on the quantity
filled so far). Every event names its order by ``client_order_id`` and carries
``ts_ns``, the time it happened (UTC nanoseconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from trademk.domain.fills import Fill
from trademk.domain.instruments import require_text, require_timestamp_ns


@dataclass(frozen=True, slots=True)
class OrderEventBase:
    """Fields and checks shared by every order event."""

    client_order_id: str
    ts_ns: int

    def __post_init__(self) -> None:
        client_order_id, ts_ns = self.client_order_id, self.ts_ns
        # The common valid case in a few comparisons; anything else gets the full checks.
        if (
            type(client_order_id) is str
            and client_order_id.strip()
            and type(ts_ns) is int
            and ts_ns >= 0
        ):
            return
        require_text("client_order_id", client_order_id)
        require_timestamp_ns("ts_ns", ts_ns)


@dataclass(frozen=True, slots=True)
class OrderDenied(OrderEventBase):
    """Risk refused the order before it reached a venue (never a silent drop)."""

    reason: str

    def __post_init__(self) -> None:
        OrderEventBase.__post_init__(self)
        require_text("denial reason", self.reason)


@dataclass(frozen=True, slots=True)
class OrderSubmitted(OrderEventBase):
    """The order was sent to the venue."""


@dataclass(frozen=True, slots=True)
class OrderAccepted(OrderEventBase):
    """The venue acknowledged the order and gave it ``venue_order_id``."""

    venue_order_id: str

    def __post_init__(self) -> None:
        OrderEventBase.__post_init__(self)
        require_text("venue_order_id", self.venue_order_id)


@dataclass(frozen=True, slots=True)
class OrderRejected(OrderEventBase):
    """The venue refused the order."""

    reason: str

    def __post_init__(self) -> None:
        OrderEventBase.__post_init__(self)
        require_text("rejection reason", self.reason)


@dataclass(frozen=True, slots=True)
class OrderCanceled(OrderEventBase):
    """The order was canceled; whatever was filled before stays filled."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderExpired(OrderEventBase):
    """The order's time in force ran out."""


@dataclass(frozen=True, slots=True)
class OrderPendingCancel(OrderEventBase):
    """A cancel was requested and the venue has not confirmed it yet."""


@dataclass(frozen=True, slots=True)
class OrderFilled(OrderEventBase):
    """The order traded; ``fill`` says how much, at what price and fee."""

    fill: Fill

    def __post_init__(self) -> None:
        OrderEventBase.__post_init__(self)
        if self.fill.client_order_id != self.client_order_id:
            raise ValueError(
                f"OrderFilled for {self.client_order_id!r} carries a fill of order "
                f"{self.fill.client_order_id!r}"
            )

    @classmethod
    def of(cls, fill: Fill) -> OrderFilled:
        """The event for ``fill``, stamped with the fill's own execution time."""
        return cls(client_order_id=fill.client_order_id, ts_ns=fill.ts_ns, fill=fill)


OrderEvent: TypeAlias = (
    OrderDenied
    | OrderSubmitted
    | OrderAccepted
    | OrderRejected
    | OrderCanceled
    | OrderExpired
    | OrderPendingCancel
    | OrderFilled
)
"""Any event ``Order.apply`` accepts."""

ORDER_EVENT_TYPES: tuple[type[OrderEventBase], ...] = (
    OrderDenied,
    OrderSubmitted,
    OrderAccepted,
    OrderRejected,
    OrderCanceled,
    OrderExpired,
    OrderPendingCancel,
    OrderFilled,
)
