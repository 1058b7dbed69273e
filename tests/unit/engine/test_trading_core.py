"""The trading core takes signals once it can price them (``price_wait``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

from tests.support.paper_chain import paper_chain
from trademk.backtest.event_support import InMemoryJournal
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Tick, TickKind
from trademk.domain.orders import Order, OrderSide, OrderStatus
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import SimClock
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.signal_queue import InProcessSignalQueue
from trademk.engine.trading import TradingCore

T0 = 1_767_225_600 * NANOS_PER_SECOND
CLASSES = {"BTCUSDT": AssetClass.CRYPTO}


@asynccontextmanager
async def core_with_backlog(price_wait: float) -> AsyncIterator[tuple[TradingCore, SimClock]]:
    """A core started with one market buy already queued and no price known yet."""
    clock = SimClock(T0)
    prices = LatestPriceCache()
    journal = InMemoryJournal()
    chain = paper_chain(clock, prices, CLASSES, journal=journal)
    signals = InProcessSignalQueue()
    await signals.put(OrderRequest("backlog-1", "BTCUSDT", OrderSide.BUY, Decimal("0.1")))
    core = TradingCore(
        oms=chain.oms,
        risk=chain.risk,
        journal=chain.writer,
        signals=signals,
        prices=prices,
        repository=journal,
        price_wait=price_wait,
    )
    await chain.venue.start()
    await core.start(journal)
    try:
        yield core, clock
    finally:
        await core.stop()
        await chain.venue.close()


async def order_reaches(core: TradingCore, done: Callable[[Order], bool]) -> Order:
    async with asyncio.timeout(5):
        while (order := core.oms.order("backlog-1")) is None or not done(order):
            await asyncio.sleep(0.01)
    return order


async def test_a_signal_queued_before_any_price_waits_for_one_and_fills() -> None:
    async with core_with_backlog(price_wait=10.0) as (core, clock):
        await asyncio.sleep(0.2)
        assert core.oms.order("backlog-1") is None  # not taken while nothing is priced

        clock.set(T0 + NANOS_PER_SECOND)
        core.prices.update(Tick("BTCUSDT", "X", TickKind.TRADE, clock.now_ns(), 100.0, 1.0))

        order = await order_reaches(core, lambda o: not o.is_open)
        assert order.status is OrderStatus.FILLED


async def test_without_a_price_wait_an_unpriceable_signal_is_denied_at_once() -> None:
    async with core_with_backlog(price_wait=0.0) as (core, _clock):
        order = await order_reaches(core, lambda o: not o.is_open)
        assert order.status is OrderStatus.DENIED
        assert "no market price" in (order.reason or "")
