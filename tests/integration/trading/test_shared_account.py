"""Two execution workers on one paper account: each books the other's fills, so risk
limits and buying power hold for the whole account, not twice over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.security.conftest import settings_for
from trademk.domain.calendar import NyseCalendar
from trademk.domain.market import Tick, TickKind
from trademk.domain.orders import OrderSide, OrderStatus
from trademk.domain.signals import OrderRequest
from trademk.engine.bus import InProcessBus
from trademk.engine.clock import LiveClock
from trademk.engine.oms import OrderClaimPending
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.signal_queue import InProcessSignalQueue
from trademk.engine.trading import TradingCore
from trademk.storage import database, migrate
from trademk.storage.trading_repository import TradingRepository
from trademk.wiring.trading import build_trading_core
from trademk.wiring.trading_control import ForeignFills


def quote(prices: LatestPriceCache, clock: LiveClock) -> None:
    now = clock.now_ns()
    prices.update(
        Tick("BTCUSDT", "X", TickKind.QUOTE, now, 600.0, 0.0, 599.9, 1_000.0, 600.1, 1_000.0, now)
    )


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[TradingCore]]:
    settings = settings_for(
        tmp_path,
        paper_starting_cash=Decimal("1000"),
        paper_slippage_bps=Decimal(0),
        # Workers on Redis claim each order in the journal (nothing connects to it here).
        redis_url="redis://127.0.0.1:1/0",
    )
    engine = database.create_engine(settings.app_database_url)
    await migrate.upgrade(engine)
    sessions = database.session_factory(engine)
    bus = InProcessBus()  # the Redis bus in a deployment; one fan-out serves both here
    clock = LiveClock()
    cores = []
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        for _ in range(2):
            prices = LatestPriceCache()
            quote(prices, clock)
            core = await build_trading_core(
                settings,
                clock,
                sessions,
                prices,
                NyseCalendar(date(2026, 1, 1)),
                InProcessSignalQueue(),
                bus,
            )
            stack.push_async_callback(core.oms.venue.close)
            await core.start(TradingRepository(sessions))
            stack.push_async_callback(core.stop)
            foreign = ForeignFills(bus, core, TradingRepository(sessions))
            await foreign.start()
            stack.push_async_callback(foreign.stop)
            cores.append(core)
        yield cores


async def booked(core: TradingCore, qty: Decimal) -> None:
    async with asyncio.timeout(5):
        while core.portfolio.qty("BTCUSDT") != qty:
            await asyncio.sleep(0.01)


async def test_a_fill_in_one_worker_is_in_the_others_book_and_buying_power(
    workers: list[TradingCore],
) -> None:
    first, second = workers
    await first.execute(OrderRequest("w1-buy", "BTCUSDT", OrderSide.BUY, Decimal("1")))
    assert first.portfolio.qty("BTCUSDT") == Decimal(1)
    await booked(second, Decimal(1))
    assert second.portfolio.cash == first.portfolio.cash < Decimal(400)

    # 600.1 of the 1,000 is spent: one more would need 600.1 the account no longer has.
    await second.execute(OrderRequest("w2-buy", "BTCUSDT", OrderSide.BUY, Decimal("1")))
    refused = second.oms.order("w2-buy")
    assert refused is not None and refused.status is OrderStatus.REJECTED, refused
    assert "buying power" in (refused.reason or "")
    assert first.portfolio.qty("BTCUSDT") == second.portfolio.qty("BTCUSDT") == Decimal(1)


async def test_an_order_claimed_by_a_worker_that_died_before_sending_it_is_taken_over(
    workers: list[TradingCore],
) -> None:
    dead, survivor = workers
    survivor.oms.takeover_after = 0.2  # the signal stream's claim_idle, shortened
    request = OrderRequest("orphan", "BTCUSDT", OrderSide.BUY, Decimal("1"))
    # The first worker claimed the order, then died before it risk-checked and sent it.
    assert await dead.journal.journal.claim(dead.oms.build_order(request))

    with pytest.raises(OrderClaimPending):  # its signal stays unacknowledged and comes back
        await survivor.execute(request)
    await asyncio.sleep(0.3)
    await survivor.execute(request)

    taken = survivor.oms.order("orphan")
    assert taken is not None and taken.status is OrderStatus.FILLED
    stored = await survivor.journal.journal.order("orphan")
    assert stored is not None and stored.status is OrderStatus.FILLED
    await booked(dead, Decimal(1))  # filled once, in the whole account
    await survivor.execute(request)  # a further copy of the signal changes nothing
    assert survivor.portfolio.qty("BTCUSDT") == Decimal(1)
