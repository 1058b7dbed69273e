"""Helpers shared by the AlpacaVenue integration tests: a fake with markets, a started venue,
its event log, orders and waits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

from tests.contracts.execution_harness import EventLog
from tests.contracts.harness_alpaca import fast_alpaca_venue
from tests.fakes.alpaca_trading import AlpacaTradingFake, RecordedRequest
from trademk.domain.fills import Fill
from trademk.domain.order_events import OrderAccepted, OrderEvent, OrderFilled
from trademk.domain.orders import Order, OrderSide, OrderType, TimeInForce
from trademk.venues.alpaca.execution import AlpacaVenue

BID, ASK = Decimal("60000"), Decimal("60010")
ORDERS = "/v2/orders"
BY_CLIENT_ID = "/v2/orders:by_client_order_id"


@asynccontextmanager
async def market_fake() -> AsyncIterator[AlpacaTradingFake]:
    """A started fake with BTC/USD and AAPL markets."""
    async with AlpacaTradingFake() as server:
        await server.set_market("BTC/USD", BID, ASK)
        await server.set_market("AAPL", Decimal("190.00"), Decimal("190.05"))
        yield server


@asynccontextmanager
async def started_venue(fake: AlpacaTradingFake, **options: object) -> AsyncIterator[AlpacaVenue]:
    """A started ``AlpacaVenue`` on ``fake`` (test-sized timeouts), closed on exit."""
    venue = fast_alpaca_venue(fake, **options)
    await venue.start()
    try:
        yield venue
    finally:
        await venue.close()


@asynccontextmanager
async def event_log(venue: AlpacaVenue) -> AsyncIterator[EventLog]:
    """``venue.events()`` collected in the background."""
    collected = EventLog(venue, timeout=5.0)
    try:
        yield collected
    finally:
        await collected.close()


def order(
    symbol: str = "BTCUSDT",
    side: OrderSide = OrderSide.BUY,
    qty: str = "0.25",
    *,
    limit: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    type: OrderType | None = None,
) -> Order:
    return Order(
        client_order_id=f"it-{uuid.uuid4().hex[:12]}",
        symbol=symbol,
        side=side,
        type=type or (OrderType.LIMIT if limit else OrderType.MARKET),
        qty=Decimal(qty),
        venue="alpaca",
        created_ns=1,
        limit_price=Decimal(limit) if limit else None,
        time_in_force=tif,
    )


def fills(events: list[OrderEvent]) -> list[Fill]:
    return [e.fill for e in events if isinstance(e, OrderFilled)]


def filled(qty: str) -> Callable[[list[OrderEvent]], bool]:
    return lambda events: sum((f.qty for f in fills(events)), Decimal(0)) == Decimal(qty)


def has(kind: type) -> Callable[[list[OrderEvent]], bool]:
    return lambda events: any(isinstance(e, kind) for e in events)


def kinds(events: list[OrderEvent]) -> list[type]:
    return [type(e) for e in events]


def order_calls(fake: AlpacaTradingFake) -> list[tuple[str, str, int | None]]:
    """(method, path, status) of every submission and lookup by client_order_id."""
    return [
        (r.method, r.path, r.status)
        for r in fake.requests
        if (r.method, r.path) in (("POST", ORDERS), ("GET", BY_CLIENT_ID))
    ]


def posts(fake: AlpacaTradingFake) -> list[RecordedRequest]:
    return fake.requests_to("POST", ORDERS)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll state the fake exposes no event for, for at most 5 s."""
    try:
        async with asyncio.timeout(5.0):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def stream_barrier(venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog) -> None:
    """Return once every trade update the fake streamed so far has been handled: a fill of a
    fresh barrier order is streamed after them, on the same connection."""
    barrier = order(qty="1", limit="1000")
    await venue.submit(barrier)
    await log.wait_for_order(barrier.client_order_id, has(OrderAccepted), "the barrier")
    await fake.fill(barrier.client_order_id, Decimal("0.5"), Decimal("1000"))
    await log.wait_for_order(barrier.client_order_id, has(OrderFilled), "the barrier fill")
