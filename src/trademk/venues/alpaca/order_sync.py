"""Alpaca's view of an order → the domain events that bring ours up to it, each once.

Alpaca tells us about an order in two ways: ``trade_updates`` messages (an
event plus the order object as it stands after it) and REST order objects
(after a submit or a cancel, and when catching up after the stream
reconnects). Both can repeat (a second ``new``, a fill seen on the stream and
again in a REST answer) and both can be missed (a dropped stream). So every
order is tracked with the status and the filled quantity already *emitted*, and
each piece of news is reduced to the difference:

- status events are emitted only when the lifecycle table allows the move from
  the emitted status, so a repeated ``new`` or ``canceled`` is dropped;
- a working order is acknowledged (``OrderAccepted``) before anything else is
  said about it, since an expiry, say, needs an accepted order;
- fills are emitted for ``filled_qty`` beyond what was emitted. The part a
  trade update's own execution explains becomes a fill with Alpaca's
  ``execution_id`` as trade id and the execution's price and quantity; any
  other part (fills we never saw, e.g. while the stream was down) becomes one
  *synthesised* fill whose price makes the order's average match Alpaca's
  ``filled_avg_price``.

A synthesised fill's trade id is ``alpaca-sync-<alpaca order id>-<cumulative
filled qty after it>``: deterministic, so catching up twice to the same point
yields the same id, and never equal to a real execution id (a UUID). A real
fill that arrives after a synthesised one covered it adds no quantity beyond
what was emitted, so it is dropped rather than counted twice.

A rejection after the order was accepted cannot be an ``OrderRejected`` in our
lifecycle (ACCEPTED → REJECTED is illegal); it is emitted as ``OrderCanceled``
with the rejection as its reason.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import structlog

from trademk.domain.fills import Fill
from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
)
from trademk.domain.orders import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Order,
    OrderSide,
    OrderStatus,
    can_transition,
)
from trademk.venues.alpaca.symbols import from_alpaca_symbol
from trademk.venues.alpaca.trading_schemas import ORDER_SIDE, AlpacaOrder, TradeUpdate

log = structlog.get_logger(__name__)

_ZERO: Final = Decimal(0)
_S = OrderStatus


def synthesised_trade_id(alpaca_order_id: str, cumulative_qty: Decimal) -> str:
    """The trade id of a catch-up fill that brings an order to ``cumulative_qty``."""
    return f"alpaca-sync-{alpaca_order_id}-{format(cumulative_qty.normalize(), 'f')}"


@dataclass(slots=True)
class TrackedOrder:
    """What has been emitted about one order so far."""

    client_order_id: str
    symbol: str
    side: OrderSide
    qty: Decimal
    strategy_id: str | None = None
    status: OrderStatus = _S.SUBMITTED
    venue_order_id: str | None = None
    filled_qty: Decimal = _ZERO
    filled_notional: Decimal = _ZERO
    submitted_ns: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class _Execution:
    trade_id: str
    qty: Decimal
    price: Decimal
    ts_ns: int


class OrderSynchronizer:
    """Tracks orders and turns each Alpaca order snapshot into the missing domain events."""

    def __init__(self, venue: str, max_finished: int = 10_000) -> None:
        self.venue = venue
        self.duplicates = 0
        self.synthesised_fills = 0
        self._orders: dict[str, TrackedOrder] = {}
        self._finished: deque[str] = deque()
        self._max_finished = max_finished

    # -- registration -----------------------------------------------------------

    def track(self, order: Order) -> TrackedOrder:
        """Start tracking an order we are about to submit (idempotent)."""
        tracked = self._orders.get(order.client_order_id)
        if tracked is None:
            tracked = TrackedOrder(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                strategy_id=order.strategy_id,
            )
            self._orders[order.client_order_id] = tracked
        return tracked

    def forget(self, client_order_id: str) -> None:
        """Stop tracking an order Alpaca never accepted (the submit was refused)."""
        self._orders.pop(client_order_id, None)

    def seed(self, order: AlpacaOrder, symbol: str | None = None) -> None:
        """Take Alpaca's current state of an order as already known: no events for it.

        Used on start for orders already at Alpaca: the OMS reconciles those
        from the venue's reports, so only what happens afterwards is news.
        """
        if order.client_order_id in self._orders:
            return
        filled = order.filled
        self._orders[order.client_order_id] = TrackedOrder(
            client_order_id=order.client_order_id,
            symbol=symbol or from_alpaca_symbol(order.symbol, order.asset_class),
            side=ORDER_SIDE[order.side],
            qty=order.quantity,
            status=order.domain_status,
            venue_order_id=order.id,
            filled_qty=filled,
            filled_notional=filled * (order.avg_price or _ZERO),
            submitted_ns=order.submitted_ns,
        )

    def get(self, client_order_id: str) -> TrackedOrder | None:
        return self._orders.get(client_order_id)

    def open_orders(self) -> list[TrackedOrder]:
        """Tracked orders that may still change."""
        return [tracked for tracked in self._orders.values() if tracked.is_open]

    # -- news ---------------------------------------------------------------------

    def on_trade_update(self, update: TradeUpdate) -> list[OrderEvent]:
        """The events a ``trade_updates`` message adds (none for a duplicate)."""
        execution = None
        fill_qty, fill_price = update.fill_qty, update.fill_price
        if update.is_fill and update.execution_id and fill_qty and fill_price:
            execution = _Execution(update.execution_id, fill_qty, fill_price, update.ts_ns)
        return self._sync(update.order, update.ts_ns, execution)

    def on_snapshot(self, order: AlpacaOrder) -> list[OrderEvent]:
        """The events a REST order object adds (none when nothing is new)."""
        return self._sync(order, order.status_ns, None)

    def _sync(
        self, order: AlpacaOrder, ts_ns: int, execution: _Execution | None
    ) -> list[OrderEvent]:
        tracked = self._orders.get(order.client_order_id)
        if tracked is None:
            tracked = self._adopt(order)
        if tracked.venue_order_id is None:
            tracked.venue_order_id = order.id
        if tracked.submitted_ns is None:
            tracked.submitted_ns = order.submitted_ns
        target = order.domain_status
        events: list[OrderEvent] = []
        if tracked.status is _S.SUBMITTED and target not in (_S.SUBMITTED, _S.REJECTED):
            events.append(OrderAccepted(tracked.client_order_id, ts_ns, order.id))
            tracked.status = _S.ACCEPTED
        events.extend(self._fills(tracked, order, ts_ns, execution))
        status_event = self._status_event(tracked, order, target, ts_ns)
        if status_event is not None:
            events.append(status_event)
        if not events:
            self.duplicates += 1
        if tracked.status in TERMINAL_STATUSES:
            self._finish(tracked.client_order_id)
        return events

    def _adopt(self, order: AlpacaOrder) -> TrackedOrder:
        """Track an order we did not submit (another process, or placed by hand)."""
        tracked = TrackedOrder(
            client_order_id=order.client_order_id,
            symbol=from_alpaca_symbol(order.symbol, order.asset_class),
            side=ORDER_SIDE[order.side],
            qty=order.quantity,
        )
        self._orders[order.client_order_id] = tracked
        return tracked

    def _finish(self, client_order_id: str) -> None:
        # Finished orders stay tracked for a while so late duplicates are recognised.
        if client_order_id in self._finished:
            return
        self._finished.append(client_order_id)
        while len(self._finished) > self._max_finished:
            self._orders.pop(self._finished.popleft(), None)

    # -- fills ----------------------------------------------------------------------

    def _fills(
        self,
        tracked: TrackedOrder,
        order: AlpacaOrder,
        ts_ns: int,
        execution: _Execution | None,
    ) -> list[OrderEvent]:
        missing = order.filled - tracked.filled_qty
        if missing <= 0:
            return []
        if tracked.status in TERMINAL_STATUSES:
            log.warning(
                "Alpaca reports fills on an order already closed; ignored",
                client_order_id=tracked.client_order_id,
                status=str(tracked.status),
            )
            return []
        if execution is not None and execution.qty > missing:
            execution = None  # part of it was already covered by a catch-up fill
        gap = missing - (execution.qty if execution else _ZERO)
        events: list[OrderEvent] = []
        if gap > 0:
            price = _gap_price(order, tracked, gap, execution)
            if price is None:
                log.warning(
                    "cannot price missing fills yet (no average price)",
                    client_order_id=tracked.client_order_id,
                )
                return []
            cumulative = tracked.filled_qty + gap
            trade_id = synthesised_trade_id(order.id, cumulative)
            events.append(self._fill(tracked, order.id, _Execution(trade_id, gap, price, ts_ns)))
            self.synthesised_fills += 1
        if execution is not None:
            events.append(self._fill(tracked, order.id, execution))
        return events

    def _fill(
        self, tracked: TrackedOrder, venue_order_id: str, execution: _Execution
    ) -> OrderEvent:
        fill = Fill(
            client_order_id=tracked.client_order_id,
            venue_order_id=venue_order_id,
            trade_id=execution.trade_id,
            symbol=tracked.symbol,
            side=tracked.side,
            qty=execution.qty,
            price=execution.price,
            fee=_ZERO,
            ts_ns=execution.ts_ns,
            venue=self.venue,
            strategy_id=tracked.strategy_id,
        )
        tracked.filled_qty += execution.qty
        tracked.filled_notional += execution.qty * execution.price
        tracked.status = _S.FILLED if tracked.filled_qty >= tracked.qty else _S.PARTIALLY_FILLED
        return OrderFilled.of(fill)

    # -- status ---------------------------------------------------------------------

    def _status_event(
        self, tracked: TrackedOrder, order: AlpacaOrder, target: OrderStatus, ts_ns: int
    ) -> OrderEvent | None:
        cid = tracked.client_order_id
        event: OrderEvent | None = None
        if target is _S.REJECTED and tracked.status is _S.SUBMITTED:
            event = OrderRejected(cid, ts_ns, "rejected by Alpaca")
        elif target is _S.REJECTED and tracked.is_open:
            event = OrderCanceled(cid, ts_ns, "rejected by Alpaca after it was accepted")
            target = _S.CANCELED
        elif target is _S.CANCELED:
            event = OrderCanceled(cid, ts_ns, _cancel_reason(order))
        elif target is _S.EXPIRED:
            event = OrderExpired(cid, ts_ns)
        elif target is _S.PENDING_CANCEL:
            event = OrderPendingCancel(cid, ts_ns)
        if event is None or not can_transition(tracked.status, target):
            return None
        tracked.status = target
        return event


def _cancel_reason(order: AlpacaOrder) -> str:
    if order.status == "replaced":
        return f"replaced by Alpaca order {order.replaced_by}"
    return "canceled at Alpaca"


def _gap_price(
    order: AlpacaOrder, tracked: TrackedOrder, gap: Decimal, execution: _Execution | None
) -> Decimal | None:
    """The price of the unseen fills that makes the order's average Alpaca's average."""
    average = order.avg_price
    if average is None:
        return execution.price if execution is not None else None
    known = tracked.filled_notional + (execution.qty * execution.price if execution else _ZERO)
    price = (order.filled * average - known) / gap
    # Alpaca rounds its average; a rounding artefact must not make a price <= 0.
    return price if price > 0 else average
