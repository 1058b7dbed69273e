"""Order management: request → risk → venue; venue events → orders, fills, positions.

The OMS owns the in-memory truth of orders and the portfolio. Every request
passes the risk gate; a denial becomes a DENIED order with the rule's reason.
Venue events are applied through ``Order.apply`` (the lifecycle table), fills
update the portfolio, and everything is journaled write-behind and published
for WebSocket clients. ``client_order_id`` makes every path idempotent.

A venue that answers a submission synchronously (``ImmediateVenue``: the paper
venue) hands its events back from ``submit_now``; the OMS applies them before
``submit`` returns, in the order the venue produced them (anything it had
queued first), instead of waiting for its event task to take them off
``events()``. Events that happen later (fills of resting orders on ticks,
cancels, expiry) still arrive through ``events()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import structlog

from trademk.domain.errors import InvariantViolation, RejectedError, TransientError
from trademk.domain.fills import Fill
from trademk.domain.market import AssetClass
from trademk.domain.order_events import (
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from trademk.domain.orders import Order, OrderStatus
from trademk.domain.portfolio import Portfolio
from trademk.domain.ports import ExecutionClient
from trademk.domain.position import Position
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import Clock
from trademk.engine.journal_writer import JournalWriter
from trademk.engine.lifecycle import ComponentState, Lifecycle

log = structlog.get_logger(__name__)


class OrderClaimPending(TransientError):
    """Another worker claimed the order and has not sent it yet: try again later."""


class EventSink(Protocol):
    """Where the OMS publishes order, fill and position events (the message bus)."""

    def publish(self, topic: str, payload: Mapping[str, Any]) -> None: ...

    def has_subscribers(self, topic: str) -> bool: ...


class _NoSink:
    def publish(self, topic: str, payload: Mapping[str, Any]) -> None:
        return None

    def has_subscribers(self, topic: str) -> bool:
        return False


RECENT_ORDERS_KEPT = 10_000


class RiskVerdict(Protocol):
    @property
    def approved(self) -> bool: ...

    @property
    def reason(self) -> str: ...


class RiskGate(Protocol):
    def check(self, order: Order) -> RiskVerdict: ...


@runtime_checkable
class ImmediateVenue(Protocol):
    """A venue that can answer a submission synchronously (the paper venue).

    ``submit_now`` returns every event not yet delivered through ``events()``,
    in order, the submission's own last; the OMS applies them at once instead of
    waiting for its event task to take them off the stream.
    """

    def submit_now(self, order: Order) -> list[OrderEvent]: ...

    def take_events(self) -> list[OrderEvent]:
        """Every event not yet delivered through ``events()``, in order (they no
        longer come out of it)."""
        ...


def order_payload(order: Order) -> dict[str, Any]:
    """The JSON-ready view of an order published on the bus."""
    return {
        "client_order_id": order.client_order_id,
        "venue": order.venue,
        "venue_order_id": order.venue_order_id,
        "symbol": order.symbol,
        "side": str(order.side),
        "type": str(order.type),
        "time_in_force": str(order.time_in_force),
        "qty": str(order.qty),
        "limit_price": None if order.limit_price is None else str(order.limit_price),
        "stop_price": None if order.stop_price is None else str(order.stop_price),
        "status": str(order.status),
        "filled_qty": str(order.filled_qty),
        "avg_fill_price": None if order.avg_fill_price is None else str(order.avg_fill_price),
        "strategy_id": order.strategy_id,
        "reason": order.reason,
    }


def fill_payload(fill: Fill) -> dict[str, Any]:
    return {
        "client_order_id": fill.client_order_id,
        "trade_id": fill.trade_id,
        "symbol": fill.symbol,
        "side": str(fill.side),
        "qty": str(fill.qty),
        "price": str(fill.price),
        "fee": str(fill.fee),
        "venue": fill.venue,
        "venue_order_id": fill.venue_order_id,
        "ts": fill.ts_ns,
        "strategy_id": fill.strategy_id,
    }


def position_payload(position: Position) -> dict[str, Any]:
    return {
        "symbol": position.symbol,
        "venue": position.venue,
        "qty": str(position.qty),
        "avg_price": str(position.avg_price),
        "realized_pnl": str(position.realized_pnl),
        "unrealized_pnl": str(position.unrealized_pnl),
        "last_price": None if position.last_price is None else str(position.last_price),
    }


class OrderManager:
    """Routes order requests to one venue and applies what the venue reports."""

    def __init__(
        self,
        venue: ExecutionClient,
        risk: RiskGate,
        portfolio: Portfolio,
        journal: JournalWriter,
        clock: Clock,
        asset_classes: Mapping[str, AssetClass],
        events: EventSink | None = None,
        claim_orders: bool = False,
        takeover_after: float = 10.0,
    ) -> None:
        self.venue = venue
        self._immediate = venue if isinstance(venue, ImmediateVenue) else None
        self.risk = risk
        self.portfolio = portfolio
        self.journal = journal
        self.clock = clock
        self.asset_classes = asset_classes
        self._events: EventSink = events or _NoSink()
        # With several execution processes, a signal may reach two of them; the
        # journal's unique client_order_id decides which one trades it.
        self.claim_orders = claim_orders
        self.takeover_after = takeover_after
        # Open (or in-flight) orders, and a bounded memory of recently finished ones
        # so late venue events and repeated submits still find their order.
        self._open: dict[str, Order] = {}
        self._recent: OrderedDict[str, Order] = OrderedDict()
        self.lifecycle = Lifecycle("oms")
        self.counters: dict[str, int] = {"submitted": 0, "denied": 0, "rejected": 0, "fills": 0}
        self._events_task: asyncio.Task[None] | None = None
        self._fill_listeners: list[Callable[[Order, OrderFilled], None]] = []
        # Ids of orders from earlier runs: a resubmitted id is answered from the journal.
        self._known_ids: set[str] = set()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Load open orders from the journal and start applying venue events."""
        for order in await self.journal.journal.open_orders():
            self._open[order.client_order_id] = order
        self._known_ids = await self.journal.journal.client_order_ids()
        self._events_task = asyncio.create_task(self._consume_events(), name="oms-events")
        self.lifecycle.to(ComponentState.RUNNING)

    async def stop(self) -> None:
        if self._events_task is not None:
            self._events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events_task
            self._events_task = None
        if self.lifecycle.state is not ComponentState.STOPPED:
            self.lifecycle.to(ComponentState.STOPPED)

    def on_fill(self, listener: Callable[[Order, OrderFilled], None]) -> None:
        """Call ``listener(order, event)`` after each fill is applied (strategies use it)."""
        self._fill_listeners.append(listener)

    # ------------------------------------------------------------------ requests
    def open_orders(self) -> list[Order]:
        return [order for order in self._open.values() if order.is_open]

    def order(self, client_order_id: str) -> Order | None:
        """An open or recently finished order of this process."""
        return self._open.get(client_order_id) or self._recent.get(client_order_id)

    def build_order(self, request: OrderRequest) -> Order:
        """Validate a request into an INITIALIZED order (ValueError on bad terms)."""
        return request.to_order(
            self.venue.name, self.clock.now_ns(), self.asset_classes.get(request.symbol)
        )

    async def submit(self, request: OrderRequest) -> Order:
        """Risk-check and send one request; idempotent by ``client_order_id``."""
        cid = request.client_order_id
        known = self._open.get(cid) or self._recent.get(cid)
        if known is None and cid in self._known_ids:
            known = await self.journal.journal.order(cid)
            if known is not None and self.claim_orders and known.status is OrderStatus.INITIALIZED:
                known = None  # claimed but never sent: ``_claim`` decides who sends it
        if known is not None:
            return known
        order = self.build_order(request)
        if self.claim_orders:
            stored = await self._claim(order)
            if stored is not None:
                return stored
        if self._admit(order):
            await self._send(order)
        return order

    async def _claim(self, order: Order) -> Order | None:
        """Claim ``order`` in the shared journal: None when this worker is to send it,
        else the stored order (another worker has it).

        An order still INITIALIZED ``takeover_after`` seconds after it was claimed
        was claimed by a worker that died before sending it; one worker takes it
        over. Until then ``OrderClaimPending`` leaves the signal unacknowledged, so
        it comes back (and is taken over) instead of being lost.
        """
        journal = self.journal.journal
        cid = order.client_order_id
        if await journal.claim(order):
            return None
        stored = await journal.order(cid)
        if stored is None or stored.status is not OrderStatus.INITIALIZED:
            return stored if stored is not None else order
        stale_ns = int(self.takeover_after * 1_000_000_000)
        if await journal.take_over(cid, self.clock.now_ns(), stale_ns):
            log.warning("took over an order its worker claimed but never sent", client_order_id=cid)
            return None
        raise OrderClaimPending(
            f"order {cid} is claimed by another worker and not sent yet; its signal comes back"
        )

    def submit_now(self, request: OrderRequest) -> Order:
        """``submit`` for a synchronous caller (the backtest driver), same steps and result.

        Possible only when nothing needs awaiting: the venue answers at once
        (``ImmediateVenue``), orders are not claimed in the journal, and the id
        is not one known only from the journal of an earlier run (``submit``
        looks those up). Otherwise it raises ``RuntimeError``; use ``submit``.
        """
        immediate = self._immediate
        if immediate is None or self.claim_orders:
            raise RuntimeError("submit_now needs an ImmediateVenue and no order claiming")
        cid = request.client_order_id
        known = self._open.get(cid) or self._recent.get(cid)
        if known is not None:
            return known
        if cid in self._known_ids:
            raise RuntimeError(f"order {cid!r} is known only from the journal; use submit()")
        order = self.build_order(request)
        if self._admit(order):
            self._send_now(immediate, order)
        return order

    def _admit(self, order: Order) -> bool:
        """Track ``order`` and put it through risk: DENIED (False) or SUBMITTED (True)."""
        cid = order.client_order_id
        self._known_ids.add(cid)
        self._open[cid] = order
        verdict = self.risk.check(order)
        now = self.clock.now_ns()
        if not verdict.approved:
            order.apply(OrderDenied(cid, now, verdict.reason))
            self.counters["denied"] += 1
            self._record(order)
            log.info("order denied", client_order_id=cid, reason=verdict.reason)
            return False
        order.apply(OrderSubmitted(cid, now))
        self.counters["submitted"] += 1
        self._record(order)
        return True

    async def resend(self, order: Order) -> None:
        """Send an already-submitted order the venue never received (same client_order_id)."""
        await self._send(order)

    def apply(self, event: OrderEvent) -> None:
        """Apply an event that did not come from the venue stream (reconciliation)."""
        self._apply(event)

    async def _send(self, order: Order) -> None:
        immediate = self._immediate
        if immediate is not None:
            self._send_now(immediate, order)
            return
        try:
            await self.venue.submit(order)
        except RejectedError as err:
            self._apply(OrderRejected(order.client_order_id, self.clock.now_ns(), str(err)))
        except TransientError as err:
            self._submit_outcome_unknown(order, err)

    def _send_now(self, venue: ImmediateVenue, order: Order) -> None:
        """Send to an ImmediateVenue and apply its answer before returning."""
        try:
            events = venue.submit_now(order)
        except RejectedError as err:
            self._apply(OrderRejected(order.client_order_id, self.clock.now_ns(), str(err)))
            return
        except TransientError as err:
            self._submit_outcome_unknown(order, err)
            return
        for event in events:
            self._apply_venue_event(event)

    @staticmethod
    def _submit_outcome_unknown(order: Order, err: TransientError) -> None:
        # The venue may or may not have the order; reconciliation settles it.
        log.warning(
            "submit outcome unknown; reconciliation will settle it",
            client_order_id=order.client_order_id,
            error=str(err),
        )

    def apply_venue_events(self) -> int:
        """Apply now the events an ImmediateVenue has ready (fills of resting orders on
        ticks, cancels), instead of waiting for the event task to take them; returns
        how many. A synchronous driver (the backtest) calls it after each price it
        publishes; the event task applies whatever is left, exactly once either way.
        """
        immediate = self._immediate
        if immediate is None:
            return 0
        events = immediate.take_events()
        for event in events:
            self._apply_venue_event(event)
        return len(events)

    async def cancel(self, client_order_id: str) -> Order:
        """Ask the venue to cancel; the venue's event moves the order to CANCELED."""
        order = self.order(client_order_id)
        if order is None:
            raise KeyError(client_order_id)
        if not order.is_open:
            raise RejectedError(f"order {client_order_id} is {order.status}; it cannot be canceled")
        await self.venue.cancel(client_order_id)
        return order

    async def cancel_all(self, reason: str) -> int:
        """Cancel every open order (halt uses this); returns how many were asked."""
        count = 0
        for order in self.open_orders():
            try:
                await self.venue.cancel(order.client_order_id)
                count += 1
            except RejectedError as err:
                log.warning("cancel refused", client_order_id=order.client_order_id, error=str(err))
        log.info("canceled open orders", count=count, reason=reason)
        return count

    # -------------------------------------------------------------------- events
    async def _consume_events(self) -> None:
        async for event in self.venue.events():
            self._apply_venue_event(event)

    def _apply_venue_event(self, event: OrderEvent) -> None:
        try:
            self._apply(event)
        except InvariantViolation as err:
            log.error("venue event violates the order lifecycle", error=str(err))

    def _apply(self, event: OrderEvent) -> None:
        cid = event.client_order_id
        order = self._open.get(cid) or self._recent.get(cid)
        if order is None:
            log.warning("event for an unknown order", client_order_id=cid)
            return
        if isinstance(event, OrderFilled):
            if not order.apply(event):
                return  # a fill already applied
            self._apply_fill(order, event)
        else:
            if order.is_terminal:
                return  # late duplicate (e.g. a second cancel confirmation)
            order.apply(event)
            if isinstance(event, OrderRejected):
                self.counters["rejected"] += 1
        self._record(order)

    def _apply_fill(self, order: Order, event: OrderFilled) -> None:
        fill = event.fill
        if not self.portfolio.apply(fill):
            return
        self.counters["fills"] += 1
        position = self.portfolio.position(fill.symbol, fill.venue)
        self.journal.fill(fill)
        if position is not None:
            self.journal.position(position)
            if self._events.has_subscribers("positions"):
                self._events.publish("positions", position_payload(position))
        if self._events.has_subscribers("fills"):
            self._events.publish("fills", fill_payload(fill))
        for listener in self._fill_listeners:
            listener(order, event)

    def _record(self, order: Order) -> None:
        """Track the order as open or recently finished, journal it, publish it."""
        cid = order.client_order_id
        if not order.is_terminal:
            self._open[cid] = order
        else:
            self._open.pop(cid, None)
            recent = self._recent
            recent[cid] = order
            recent.move_to_end(cid)
            if len(recent) > RECENT_ORDERS_KEPT:
                recent.popitem(last=False)
        self.journal.order(order)
        if self._events.has_subscribers("orders"):
            self._events.publish("orders", order_payload(order))

    # ------------------------------------------------------------------- marking
    def mark(self, symbol: str, price: Decimal) -> None:
        self.portfolio.mark(symbol, price)

    def status(self) -> dict[str, Any]:
        return {
            "state": str(self.lifecycle.state),
            "reason": self.lifecycle.reason,
            "venue": self.venue.name,
            "open_orders": len(self.open_orders()),
            **self.counters,
        }
