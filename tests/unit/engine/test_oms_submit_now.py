"""The OMS's synchronous entry points: ``submit_now`` and ``apply_venue_events``.

The backtest driver uses them to run the live chain without event-loop hops; they
must leave orders, fills and the portfolio exactly as ``submit`` and the event
task do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest

from tests.support.paper_chain import paper_chain
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Tick, TickKind
from trademk.domain.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from trademk.domain.portfolio import Portfolio
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import SimClock
from trademk.engine.journal_writer import JournalWriter
from trademk.engine.oms import OrderManager
from trademk.engine.price_cache import LatestPriceCache
from trademk.venues.paper import PaperVenue

T0 = 1_767_225_600 * NANOS_PER_SECOND
SYMBOL = "BTCUSDT"


@dataclass
class Chain:
    clock: SimClock
    prices: LatestPriceCache
    venue: PaperVenue
    portfolio: Portfolio
    oms: OrderManager
    writer: JournalWriter

    def trade(self, price: float, ts: int) -> None:
        self.clock.set(ts)
        self.prices.update(Tick(SYMBOL, "X", TickKind.TRADE, ts, price, 1.0))


@asynccontextmanager
async def running_chain() -> AsyncIterator[Chain]:
    clock = SimClock(T0)
    prices = LatestPriceCache()
    chain = paper_chain(clock, prices, {SYMBOL: AssetClass.CRYPTO})
    await chain.start()
    made = Chain(clock, prices, chain.venue, chain.portfolio, chain.oms, chain.writer)
    made.trade(100.0, T0)
    try:
        yield made
    finally:
        await chain.stop()


@pytest.fixture
async def chain() -> AsyncIterator[Chain]:
    async with running_chain() as made:
        yield made


def request(
    cid: str, side: OrderSide, qty: str, limit: str | None = None, strategy: str = "s"
) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol=SYMBOL,
        side=side,
        qty=Decimal(qty),
        type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        limit_price=None if limit is None else Decimal(limit),
        time_in_force=TimeInForce.GTC,
        strategy_id=strategy,
    )


def status_of(order: Order) -> OrderStatus:
    """The status now (a call, so a type checker does not carry an earlier check over)."""
    return order.status


def state(order: Order) -> tuple[object, ...]:
    return (order.status, order.filled_qty, order.avg_fill_price, order.fees, order.reason)


async def test_submit_now_leaves_the_same_orders_and_book_as_submit(chain: Chain) -> None:
    steps = [
        request("a", OrderSide.BUY, "3"),
        request("b", OrderSide.SELL, "5"),
        request("c", OrderSide.BUY, "100000"),  # more than the cash: rejected
        request("d", OrderSide.BUY, "2", limit="90"),  # rests
    ]
    async with running_chain() as other:  # the same prices, driven through ``submit``
        for k, step in enumerate(steps):
            ts = T0 + (k + 1) * NANOS_PER_SECOND
            chain.trade(100.0 + k, ts)
            other.trade(100.0 + k, ts)
            synchronous = chain.oms.submit_now(step)
            awaited = await other.oms.submit(step)
            assert state(synchronous) == state(awaited)
        assert chain.portfolio.cash == other.portfolio.cash
        assert chain.portfolio.qty(SYMBOL) == other.portfolio.qty(SYMBOL)
        assert [state(o) for o in chain.oms.open_orders()] == [
            state(o) for o in other.oms.open_orders()
        ]
        assert chain.oms.counters == other.oms.counters
    rejected = chain.oms.order("c")
    assert rejected is not None and rejected.status is OrderStatus.REJECTED
    assert [o.client_order_id for o in chain.oms.open_orders()] == ["d"]


async def test_submit_now_is_idempotent_by_client_order_id(chain: Chain) -> None:
    first = chain.oms.submit_now(request("x", OrderSide.BUY, "1"))
    again = chain.oms.submit_now(request("x", OrderSide.BUY, "1"))
    assert again is first and first.status is OrderStatus.FILLED
    assert chain.portfolio.qty(SYMBOL) == Decimal(1)
    assert chain.oms.counters["fills"] == 1


async def test_submit_now_refuses_when_it_would_have_to_wait(chain: Chain) -> None:
    chain.oms.claim_orders = True
    with pytest.raises(RuntimeError, match="no order claiming"):
        chain.oms.submit_now(request("y", OrderSide.BUY, "1"))
    chain.oms.claim_orders = False
    chain.oms._known_ids.add("from-an-earlier-run")
    with pytest.raises(RuntimeError, match="known only from the journal"):
        chain.oms.submit_now(request("from-an-earlier-run", OrderSide.BUY, "1"))


async def test_resting_fill_is_applied_at_once_and_only_once(chain: Chain) -> None:
    resting = chain.oms.submit_now(request("limit", OrderSide.BUY, "1", limit="95"))
    assert status_of(resting) is OrderStatus.ACCEPTED
    chain.trade(94.0, T0 + NANOS_PER_SECOND)  # 1 unit prints through the limit: it fills
    assert status_of(resting) is OrderStatus.ACCEPTED  # not applied yet: no hop to the loop
    assert chain.oms.apply_venue_events() == 1
    assert status_of(resting) is OrderStatus.FILLED
    assert chain.portfolio.qty(SYMBOL) == Decimal(1)
    await asyncio.sleep(0)  # the event task finds nothing left to apply
    await asyncio.sleep(0)
    assert chain.oms.apply_venue_events() == 0
    assert chain.oms.counters["fills"] == 1
    assert chain.portfolio.cash == Decimal("100000") - Decimal(95)


async def test_take_events_keeps_the_end_marker_for_events_iterators() -> None:
    clock = SimClock(T0)
    prices = LatestPriceCache()
    venue = PaperVenue(prices, clock, expiry_poll_interval=None)
    await venue.start()
    await venue.close()
    assert venue.take_events() == []
    assert [event async for event in venue.events()] == []
