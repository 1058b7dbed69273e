"""Orders sent from a process without an OMS: the strategies worker's order gateway.

In a split deployment the strategies run in one process and the OMS in the
execution workers. ``RemoteOrderGateway`` gives the strategy runner what the
in-process ``OrderManager`` gives it — ``submit(request) -> Order`` and fill
listeners — over the shared signal stream and the bus:

- ``submit`` builds the INITIALIZED order exactly as ``OrderManager.build_order``
  does (same checks, same default time in force), tracks it, and puts the
  request on the signal queue; the execution worker that takes it risk-checks
  and sends it.
- The execution worker's OMS publishes every change of the order on the bus
  topic ``orders`` (``engine.oms.order_payload``) and every fill on ``fills``
  (``engine.oms.fill_payload``). The gateway follows both and moves its copy
  of the order through the lifecycle with the matching domain events, so the
  runner's ``settle`` sees it submitted, denied, filled or canceled as it would
  in process. Fills go to the fill listeners.

The two topics are separate streams, so their events can arrive in either
order: a fill may come before the order's ``submitted`` (OrderSubmitted is
applied first), a ``canceled`` before the last fills of a partly filled order
(the status waits until the fills it reports have arrived). Statuses that
would be illegal transitions (a late ``accepted`` after the fill) and
duplicates are ignored; nothing on the bus can break the gateway.

Memory is bounded: finished orders are remembered (for late duplicates and
repeated submits) up to ``keep_finished``, open ones up to ``keep_open``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol

import structlog

from trademk.domain.errors import IllegalOrderTransition, InvariantViolation, TransientError
from trademk.domain.fills import Fill
from trademk.domain.market import AssetClass
from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
)
from trademk.domain.orders import Order, OrderStatus
from trademk.domain.signals import OrderRequest
from trademk.engine.bus import MessageBus, Subscription, watch_topics
from trademk.engine.clock import Clock
from trademk.engine.fill_relay import FILLS_TOPIC, FillFollower, StoredFills, fill_of
from trademk.engine.signal_queue import SignalQueue

__all__ = [
    "FILLS_TOPIC",
    "ORDERS_TOPIC",
    "FillListener",
    "OpenOrderSource",
    "RemoteOrderGateway",
]

log = structlog.get_logger(__name__)

ORDERS_TOPIC: Final = "orders"
_BEFORE_VENUE: Final = frozenset(
    {OrderStatus.INITIALIZED, OrderStatus.DENIED, OrderStatus.SUBMITTED}
)
_AFTER_FILLS: Final = frozenset({OrderStatus.CANCELED, OrderStatus.EXPIRED})

FillListener = Callable[[Order, OrderFilled], None]


class OpenOrderSource(Protocol):
    """Where the orders still open from an earlier run come from (the trading journal)."""

    async def open_orders(self) -> list[Order]: ...


class RemoteOrderGateway:
    """``submit`` onto the signal stream, order updates and fills back from the bus."""

    def __init__(
        self,
        signals: SignalQueue,
        bus: MessageBus,
        clock: Clock,
        venue: str,
        asset_classes: Mapping[str, AssetClass],
        *,
        open_orders: OpenOrderSource | None = None,
        stored_fills: StoredFills | None = None,
        keep_finished: int = 10_000,
        keep_open: int = 10_000,
        put_timeout: float = 10.0,
        capacity: int = 100_000,
    ) -> None:
        if keep_finished <= 0 or keep_open <= 0 or capacity <= 0:
            raise ValueError("keep_finished, keep_open and capacity must be positive")
        self.signals = signals
        self.bus = bus
        self.clock = clock
        self.venue = venue
        self.asset_classes = asset_classes
        self.open_order_source = open_orders
        self.keep_finished = keep_finished
        self.keep_open = keep_open
        self.put_timeout = put_timeout
        self.capacity = capacity
        self._open: OrderedDict[str, Order] = OrderedDict()
        self._finished: OrderedDict[str, Order] = OrderedDict()
        # A terminal status that reported more filled than the fills seen so far.
        self._after_fills: dict[str, tuple[Decimal, OrderEvent]] = {}
        self._listeners: list[FillListener] = []
        # With the journal at hand, fills also come back from it (FillFollower) for any
        # the bus lost while Redis was away; else from the bus alone.
        self._fill_follower = (
            FillFollower(
                bus,
                stored_fills,
                venue,
                self._on_fill,
                load_all=False,
                skip_order=lambda cid: cid not in self._open,
            )
            if stored_fills is not None
            else None
        )
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.counters = {
            "submitted": 0,
            "updates": 0,
            "fills": 0,
            "ignored": 0,
            "malformed": 0,
            "forgotten_open": 0,
        }

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Follow ``orders`` and ``fills`` from now on, and adopt the strategies'
        orders still open from an earlier run (their fills still count)."""
        if self._task is not None:
            return
        topics = (ORDERS_TOPIC,) if self._fill_follower else (ORDERS_TOPIC, FILLS_TOPIC)
        self._subscription = self.bus.subscribe(*topics, capacity=self.capacity)
        await watch_topics(self.bus, *topics)
        if self._fill_follower is not None:
            await self._fill_follower.start()
        if self.open_order_source is not None:
            for order in await self.open_order_source.open_orders():
                if order.strategy_id and order.venue == self.venue and not order.is_terminal:
                    self._track(order)
        self._task = asyncio.create_task(self._follow(self._subscription), name="remote-orders")

    async def stop(self) -> None:
        if self._fill_follower is not None:
            await self._fill_follower.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    # -------------------------------------------------------------- OrderGateway
    def on_fill(self, listener: FillListener) -> None:
        """Call ``listener(order, event)`` after each fill of a tracked order."""
        self._listeners.append(listener)

    async def submit(self, request: OrderRequest) -> Order:
        """Queue ``request`` for the execution workers; idempotent by ``client_order_id``.

        Returns the INITIALIZED order at once; it moves on as the execution side
        reports. ``ValueError`` on bad terms; ``TransientError`` when the signal
        could not be queued within ``put_timeout`` seconds (the order is forgotten).
        """
        cid = request.client_order_id
        known = self.order(cid)
        if known is not None:
            return known
        order = request.to_order(
            self.venue, self.clock.now_ns(), self.asset_classes.get(request.symbol)
        )
        self._track(order)
        try:
            await self._put(request)
        except BaseException:
            self._open.pop(cid, None)
            raise
        self.counters["submitted"] += 1
        return order

    async def _put(self, request: OrderRequest) -> None:
        """Put with retries: the stream is idempotent by id, a second copy is harmless."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.put_timeout
        delay = 0.05
        while True:
            try:
                await self.signals.put(request)
                return
            except TransientError as err:
                if loop.time() + delay > deadline:
                    raise
                log.warning("signal not queued; retrying", error=str(err), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def resync(self) -> int:
        """Book the fills of tracked orders that the journal has and the bus lost (done
        every few seconds on its own when the journal was given); how many it read."""
        if self._fill_follower is None:
            return 0
        return await self._fill_follower.catch_up()

    # ---------------------------------------------------------------------- views
    def order(self, client_order_id: str) -> Order | None:
        """A tracked open order or a recently finished one."""
        return self._open.get(client_order_id) or self._finished.get(client_order_id)

    def open_orders(self) -> list[Order]:
        return list(self._open.values())

    def status(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "open_orders": len(self._open),
            "following": self._task is not None,
            **self.counters,
        }

    # ------------------------------------------------------------------- tracking
    def _track(self, order: Order) -> None:
        cid = order.client_order_id
        self._open[cid] = order
        self._open.move_to_end(cid)
        if len(self._open) > self.keep_open:
            # No execution worker ever answered for the oldest: stop waiting for it.
            forgotten, _ = self._open.popitem(last=False)
            self._after_fills.pop(forgotten, None)
            self.counters["forgotten_open"] += 1
            log.warning("open order forgotten: no answer for it", client_order_id=forgotten)

    def _finish_if_done(self, order: Order) -> None:
        if not order.is_terminal:
            return
        cid = order.client_order_id
        self._open.pop(cid, None)
        self._after_fills.pop(cid, None)
        self._finished[cid] = order
        if len(self._finished) > self.keep_finished:
            self._finished.popitem(last=False)

    def _apply(self, order: Order, event: OrderEvent) -> bool:
        """Apply ``event``; False (and nothing changed) if the lifecycle refuses it."""
        try:
            applied = order.apply(event)
        except IllegalOrderTransition as err:
            # Expected now and then: the topics arrive in either order.
            log.debug("order update ignored", error=str(err))
            self.counters["ignored"] += 1
            return False
        except InvariantViolation as err:
            log.warning("order update does not fit the order; ignored", error=str(err))
            self.counters["ignored"] += 1
            return False
        if not applied:
            self.counters["ignored"] += 1  # a fill applied already
        return applied

    def _submitted(self, order: Order) -> None:
        """The execution side took the order: it was submitted, whatever came first."""
        if order.status is OrderStatus.INITIALIZED:
            self._apply(order, OrderSubmitted(order.client_order_id, self.clock.now_ns()))

    # ---------------------------------------------------------------- bus events
    async def _follow(self, subscription: Subscription) -> None:
        async for topic, payload in subscription:
            try:
                if topic == FILLS_TOPIC:
                    self.on_fill_payload(payload)
                else:
                    self.on_order_payload(payload)
            except Exception:  # one bad event must not stop the following
                self.counters["malformed"] += 1
                log.exception("order event not applied", topic=topic)

    def on_order_payload(self, payload: Mapping[str, Any]) -> None:
        """Apply an ``orders`` payload to the tracked order it names (others: ignored)."""
        order = self._open.get(str(payload.get("client_order_id")))
        if order is None:
            return
        try:
            status = OrderStatus(str(payload.get("status")))
            reported = Decimal(str(payload.get("filled_qty") or 0))
        except (ValueError, InvalidOperation):
            self.counters["malformed"] += 1
            log.warning("malformed order update", payload=dict(payload))
            return
        self.counters["updates"] += 1
        if status not in _BEFORE_VENUE:
            self._submitted(order)
        event = self._event_for(order, status, payload)
        if event is None:
            return
        if status in _AFTER_FILLS and reported > order.filled_qty:
            self._after_fills[order.client_order_id] = (reported, event)
            return
        if self._apply(order, event):
            self._finish_if_done(order)

    def _event_for(
        self, order: Order, status: OrderStatus, payload: Mapping[str, Any]
    ) -> OrderEvent | None:
        """The domain event a reported status stands for; None for statuses fills carry."""
        cid = order.client_order_id
        now = self.clock.now_ns()
        reason = payload.get("reason") or None
        if status is OrderStatus.DENIED:
            return OrderDenied(cid, now, str(reason or "denied by risk"))
        if status is OrderStatus.SUBMITTED:
            return OrderSubmitted(cid, now)
        if status is OrderStatus.ACCEPTED:
            venue_order_id = payload.get("venue_order_id")
            return OrderAccepted(cid, now, str(venue_order_id)) if venue_order_id else None
        if status is OrderStatus.REJECTED:
            return OrderRejected(cid, now, str(reason or "rejected by the venue"))
        if status is OrderStatus.CANCELED:
            return OrderCanceled(cid, now, str(reason or ""))
        if status is OrderStatus.EXPIRED:
            return OrderExpired(cid, now)
        if status is OrderStatus.PENDING_CANCEL:
            return OrderPendingCancel(cid, now)
        return None  # INITIALIZED, or a fill status: the fills topic carries the fills

    def on_fill_payload(self, payload: Mapping[str, Any]) -> None:
        """Apply a ``fills`` payload to the tracked order it names and tell the listeners."""
        if str(payload.get("client_order_id")) not in self._open:
            return  # not ours, or finished (a duplicate)
        try:
            fill = fill_of(payload)
        except (KeyError, TypeError, ValueError, ArithmeticError) as err:
            self.counters["malformed"] += 1
            log.warning("malformed fill on the bus", error=str(err))
            return
        self._on_fill(fill)

    def _on_fill(self, fill: Fill) -> None:
        """Apply ``fill`` to the tracked order it belongs to (others: ignored) and tell
        the listeners; a fill seen before changes nothing."""
        order = self._open.get(fill.client_order_id)
        if order is None:
            return
        self._submitted(order)
        event = OrderFilled.of(fill)
        if not self._apply(order, event):
            return
        self.counters["fills"] += 1
        for listener in self._listeners:
            try:
                listener(order, event)
            except Exception:
                log.exception("fill listener failed", client_order_id=order.client_order_id)
        waiting = self._after_fills.get(order.client_order_id)
        if waiting is not None and order.filled_qty >= waiting[0]:
            del self._after_fills[order.client_order_id]
            self._apply(order, waiting[1])
        self._finish_if_done(order)
