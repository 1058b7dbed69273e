"""Alpaca execution: orders through alpaca-py's REST client, events from ``trade_updates``.

``AlpacaVenue`` implements the ``ExecutionClient`` port. REST calls run in
worker threads (``AlpacaRest``); the ``trade_updates`` stream runs as a task on
the caller's loop (``TradeUpdateStream``); what Alpaca says about an order is
turned into domain events, each once, by ``OrderSynchronizer``.

Submission is idempotent by ``client_order_id`` and never creates a second
order: a 429 is retried after ``Retry-After``; after an ambiguous failure (5xx,
timeout, connection reset) the next attempt first looks the order up by
``client_order_id`` and only resubmits when Alpaca does not have it; and a 422
"client_order_id must be unique" means the order exists, so it is fetched and
taken as the result (unless it is a different order under the same id).

Crypto trades as Alpaca's USD pairs (``BTCUSDT`` → ``BTC/USD``) with time in
force ``gtc`` (``ioc`` is kept; Alpaca supports only those two for crypto); a
coin Alpaca does not list is refused before any request.

After the stream reconnects, orders that may have changed meanwhile are
fetched (``GET /v2/orders?status=all&after=...``) and the events needed to
bring each to its reported state are emitted (see ``order_sync`` for how fills
missed meanwhile are synthesised without ever being counted twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final

import structlog

from trademk.config import ConfigError, Settings
from trademk.domain.errors import InvariantViolation, RejectedError, TransientError
from trademk.domain.order_events import OrderEvent, OrderRejected
from trademk.domain.orders import Order, OrderStatus
from trademk.domain.venue_reports import AccountReport, OrderReport, PositionReport
from trademk.engine.clock import Clock, LiveClock
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.venues.alpaca.alpaca_sdk import OrderRequest, QueryOrderStatus
from trademk.venues.alpaca.catch_up import CatchUp
from trademk.venues.alpaca.order_sync import OrderSynchronizer
from trademk.venues.alpaca.symbols import to_alpaca_symbol
from trademk.venues.alpaca.trade_stream import TradeUpdateStream, stream_url_for
from trademk.venues.alpaca.trading_rest import (
    AlpacaRest,
    AmbiguousOutcome,
    DuplicateClientOrderId,
)
from trademk.venues.alpaca.trading_schemas import (
    AlpacaOrder,
    AlpacaWireError,
    account_report,
    build_order_request,
    order_report,
    parse_order,
    parse_trade_update,
    position_reports,
)
from trademk.venues.reconnect import ExponentialBackoff

log = structlog.get_logger(__name__)

_CLOSED: Final = object()
_CANCELING: Final = frozenset({OrderStatus.CANCELED, OrderStatus.PENDING_CANCEL})


class AlpacaVenue:
    """The Alpaca broker as an ``ExecutionClient`` (paper or live, by ``base_url``)."""

    name = "alpaca"

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        base_url: str,
        stream_url: str | None = None,
        clock: Clock | None = None,
        request_timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        stream_ping_interval: float = 10.0,
        stream_ping_timeout: float = 20.0,
        stream_close_timeout: float = 2.0,
        stream_backoff_initial: float = 0.5,
        stream_backoff_max: float = 30.0,
        start_timeout: float = 10.0,
        catch_up_margin: float = 5.0,
    ) -> None:
        if not api_key or not secret_key:
            raise ConfigError("AlpacaVenue needs an API key and secret (ALPACA_API_KEY/SECRET)")
        stream_url = stream_url or stream_url_for(base_url)
        self.clock = clock or LiveClock()
        self.lifecycle = Lifecycle(self.name)
        self.rest = AlpacaRest(
            api_key=api_key,
            secret_key=secret_key,
            base_url=base_url.rstrip("/"),
            request_timeout=request_timeout,
            max_attempts=max_attempts,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self.sync = OrderSynchronizer(self.name)
        self.stream = TradeUpdateStream(
            api_key=api_key,
            secret_key=secret_key,
            url=stream_url,
            on_update=self._on_stream_message,
            on_listening=self._on_listening,
            on_disconnect=self._on_disconnect,
            backoff=ExponentialBackoff(stream_backoff_initial, stream_backoff_max),
            ping_interval=stream_ping_interval,
            ping_timeout=stream_ping_timeout,
            close_timeout=stream_close_timeout,
        )
        self.start_timeout = start_timeout
        self.counters: dict[str, int] = {
            "updates": 0,
            "events": 0,
            "parse_errors": 0,
            "reconnects": 0,
        }
        self.last_error: str | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._listening = asyncio.Event()
        self._connections = 0
        self.catch_up = CatchUp(
            self.rest, self.sync, self._emit, self.clock, int(catch_up_margin * 1e9)
        )

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock, **options: Any) -> AlpacaVenue:
        """The venue for ``ALPACA_*`` settings (paper unless ``ALPACA_PAPER=false``)."""
        if settings.alpaca_api_key is None or settings.alpaca_api_secret is None:
            raise ConfigError("BROKER=alpaca needs ALPACA_API_KEY and ALPACA_API_SECRET")
        return cls(
            api_key=settings.alpaca_api_key.get_secret_value(),
            secret_key=settings.alpaca_api_secret.get_secret_value(),
            base_url=(
                settings.alpaca_paper_base_url
                if settings.alpaca_paper
                else settings.alpaca_base_url
            ),
            clock=clock,
            **options,
        )

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Take Alpaca's open orders as known, then open the ``trade_updates`` stream.

        Waits up to ``start_timeout`` for the stream to listen and the first
        catch-up to finish; if the stream is not up by then the venue runs
        DEGRADED while it keeps reconnecting.
        """
        if self.lifecycle.state is not ComponentState.READY:
            return
        self.catch_up.saw(self.clock.now_ns())
        for order in await self.rest.list_orders(QueryOrderStatus.OPEN):
            self.sync.seed(order)
        self.lifecycle.to(ComponentState.RUNNING)
        self.stream.launch()
        try:
            async with asyncio.timeout(self.start_timeout):
                await self._listening.wait()
                await self.catch_up.wait()
        except TimeoutError:
            if not self._listening.is_set():
                self.lifecycle.to(ComponentState.DEGRADED, "trade_updates stream not connected")
            log.warning("Alpaca trade_updates stream not ready yet; continuing in background")

    async def close(self) -> None:
        """Stop the stream and the REST workers; ``events()`` ends."""
        if self.lifecycle.state is ComponentState.STOPPED:
            return
        self.lifecycle.to(ComponentState.STOPPED)
        await self.stream.shutdown()
        await self.catch_up.stop()
        self.rest.close()
        self._queue.put_nowait(_CLOSED)

    def status(self) -> dict[str, Any]:
        """Health and counters for observability."""
        return {
            "name": self.name,
            "state": str(self.lifecycle.state),
            "reason": self.lifecycle.reason,
            "connected": self.stream.connected,
            "requests": self.rest.requests,
            "retries": self.rest.retries,
            "duplicates": self.sync.duplicates,
            "synthesised_fills": self.sync.synthesised_fills,
            "last_error": self.last_error or self.catch_up.last_error,
            "catch_ups": self.catch_up.runs,
            **self.counters,
        }

    # -- orders -----------------------------------------------------------------------

    async def submit(self, order: Order) -> None:
        """Send ``order`` once; what happens to it follows on ``events()``.

        A refusal (a coin Alpaca does not list, an order Alpaca crypto cannot
        take, Alpaca's 4xx answer) is an ``OrderRejected`` event with the
        reason, not an exception. ``TransientError`` means the order could not
        be placed after all attempts; it may then exist at Alpaca, and the
        OMS's reconciliation settles it. An id Alpaca already has for this
        order is not sent again.
        """
        cid = order.client_order_id
        known = self.sync.get(cid)
        if known is not None and known.venue_order_id is not None:
            return
        try:
            request = build_order_request(order, to_alpaca_symbol(order.symbol))
            self.sync.track(order)
            placed = await self._place(order, request)
        except RejectedError as err:
            if known is None:
                self.sync.forget(cid)
            log.info("Alpaca refused the order", client_order_id=cid, reason=err.reason)
            self._emit([OrderRejected(cid, self.clock.now_ns(), err.reason)])
            return
        except InvariantViolation:
            if known is None:
                self.sync.forget(cid)
            raise
        self._emit(self.sync.on_snapshot(placed))

    async def _place(self, order: Order, request: OrderRequest) -> AlpacaOrder:
        cid = order.client_order_id
        backoff = self.rest.backoff()
        look_up_first = False
        attempt = 1
        while True:
            try:
                if look_up_first:
                    existing = await self.rest.find_order(cid)
                    if existing is not None:
                        return self._same_order(order, existing)
                raw = await self.rest.call(f"submit {cid}", self.rest.client.submit_order, request)
                return parse_order(raw)
            except DuplicateClientOrderId:
                existing = await self.rest.find_order(cid)
                if existing is None:
                    raise
                return self._same_order(order, existing)
            except TransientError as err:
                look_up_first = look_up_first or isinstance(err, AmbiguousOutcome)
                if attempt >= self.rest.max_attempts:
                    raise
                attempt += 1
                await self.rest.wait_before_retry(err, backoff)

    def _same_order(self, order: Order, existing: AlpacaOrder) -> AlpacaOrder:
        """``existing`` if it is ``order`` (a resubmission); a reused id is a broken invariant."""
        report = order_report(existing, order.symbol)
        if (report.side, report.qty, existing.symbol) != (
            order.side,
            order.qty,
            to_alpaca_symbol(order.symbol),
        ):
            raise InvariantViolation(
                f"client_order_id {order.client_order_id} is already used at Alpaca by a "
                f"different order ({existing.side} {existing.qty} {existing.symbol})"
            )
        return existing

    async def cancel(self, client_order_id: str) -> None:
        """Ask Alpaca to cancel; ``OrderCanceled`` (or a fill that won the race) follows.

        ``RejectedError`` if Alpaca has no such order or it is no longer open.
        """
        tracked = self.sync.get(client_order_id)
        venue_order_id = tracked.venue_order_id if tracked else None
        if venue_order_id is None:
            found = await self.rest.find_order(client_order_id)
            if found is None:
                raise RejectedError(f"Alpaca has no order {client_order_id}")
            venue_order_id = found.id
        backoff = self.rest.backoff()
        retried_ambiguous = False
        attempt = 1
        while True:
            try:
                await self.rest.call(
                    f"cancel {client_order_id}", self.rest.client.cancel_order_by_id, venue_order_id
                )
                break
            except RejectedError as err:
                # Not cancelable -- unless an earlier attempt whose answer was lost did it.
                current = await self._refresh(client_order_id)
                if retried_ambiguous and current is not None and current in _CANCELING:
                    return
                raise RejectedError(f"cannot cancel {client_order_id}: {err.reason}") from None
            except TransientError as err:
                retried_ambiguous = retried_ambiguous or isinstance(err, AmbiguousOutcome)
                if attempt >= self.rest.max_attempts:
                    raise
                attempt += 1
                await self.rest.wait_before_retry(err, backoff)
        await self._refresh(client_order_id)

    async def _refresh(self, client_order_id: str) -> OrderStatus | None:
        """Fetch an order, emit what it adds; its status (None if Alpaca has no such order)."""
        current = await self.rest.find_order(client_order_id)
        if current is None:
            return None
        self._emit(self.sync.on_snapshot(current))
        return current.domain_status

    # -- reports ------------------------------------------------------------------------

    async def order_reports(self, open_only: bool = True) -> list[OrderReport]:
        """Alpaca's open orders (or its latest 500 orders of any status)."""
        status = QueryOrderStatus.OPEN if open_only else QueryOrderStatus.ALL
        return [self._report(order) for order in await self.rest.list_orders(status)]

    async def order_report(self, client_order_id: str) -> OrderReport | None:
        found = await self.rest.find_order(client_order_id)
        return None if found is None else self._report(found)

    def _report(self, order: AlpacaOrder) -> OrderReport:
        tracked = self.sync.get(order.client_order_id)
        return order_report(order, tracked.symbol if tracked else None)

    async def position_reports(self) -> list[PositionReport]:
        raw = await self.rest.call_with_retry("positions", self.rest.client.get_all_positions)
        return position_reports(raw)

    async def account(self) -> AccountReport:
        raw = await self.rest.call_with_retry("account", self.rest.client.get_account)
        return account_report(raw)

    # -- events -------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[OrderEvent]:
        """Order events in the order Alpaca reported them, until ``close()``."""
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                self._queue.put_nowait(_CLOSED)
                return
            yield item

    def _emit(self, events: list[OrderEvent]) -> None:
        for event in events:
            self.counters["events"] += 1
            self._queue.put_nowait(event)

    async def _on_stream_message(self, message: dict[str, Any]) -> None:
        self.counters["updates"] += 1
        try:
            update = parse_trade_update(message)
            events = self.sync.on_trade_update(update)
        except (AlpacaWireError, ValueError, KeyError) as err:
            self.counters["parse_errors"] += 1
            self.last_error = f"bad trade update: {err}"
            log.warning("ignoring malformed Alpaca trade update", error=str(err))
            return
        self.catch_up.saw(update.ts_ns)
        self._emit(events)

    def _on_listening(self) -> None:
        self._connections += 1
        if self._connections > 1:
            self.counters["reconnects"] += 1
        self._listening.set()
        if self.lifecycle.state is ComponentState.DEGRADED:
            self.lifecycle.to(ComponentState.RUNNING)
        self.catch_up.schedule()

    def _on_disconnect(self, reason: str) -> None:
        self.last_error = reason
        self._listening.clear()
        if self.lifecycle.state is ComponentState.RUNNING:
            self.lifecycle.to(ComponentState.DEGRADED, f"trade_updates stream dropped: {reason}")
