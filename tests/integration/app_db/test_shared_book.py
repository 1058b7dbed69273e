"""Fills across processes: the API's book is what the workers journaled (never a fill
only the bus saw); a follower reads the bus and the database for whatever the bus lost."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide
from trademk.engine.bus import InProcessBus
from trademk.engine.fill_relay import FillFollower
from trademk.engine.oms import fill_payload
from trademk.engine.price_cache import LatestPriceCache
from trademk.storage.database import session_factory
from trademk.storage.trading_repository import TradingRepository
from trademk.wiring.shared_book import SharedBook

VENUE = "paper"


def fill(n: int, side: OrderSide = OrderSide.BUY, venue: str = VENUE) -> Fill:
    return Fill(
        client_order_id=f"c{n}",
        venue_order_id=f"v{n}",
        trade_id=f"t{n}",
        symbol="BTCUSDT",
        side=side,
        qty=Decimal("0.5"),
        price=Decimal("100"),
        fee=Decimal("0.1"),
        ts_ns=1_700_000_000_000_000_000 + n,
        venue=venue,
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_book_is_what_the_workers_journaled_each_fill_once(
    migrated_engine: AsyncEngine,
) -> None:
    repository = TradingRepository(session_factory(migrated_engine))
    await repository.save(fills=[fill(1), fill(2)])
    book = SharedBook(repository, LatestPriceCache(), VENUE, Decimal("1000"))
    await book.start()
    try:
        # Journaled later, one of them twice, and another venue's: each counted once.
        await repository.save(fills=[fill(2), fill(3, OrderSide.SELL), fill(4, venue="alpaca")])
        await book.catch_up()
        await book.catch_up()
        portfolio = book.portfolio()
        assert portfolio is not None
        assert portfolio.qty("BTCUSDT") == Decimal("0.5")
        assert portfolio.cash == Decimal("1000") - 2 * Decimal("50.1") + Decimal("49.9")
    finally:
        await book.stop()


async def test_a_fill_only_the_bus_saw_is_not_in_the_book(migrated_engine: AsyncEngine) -> None:
    # A worker published it and died before journaling it: its order is filled again later.
    repository = TradingRepository(session_factory(migrated_engine))
    bus = InProcessBus()
    book = SharedBook(repository, LatestPriceCache(), VENUE, Decimal("1000"))
    await book.start()
    try:
        bus.publish("fills", fill_payload(fill(5)))
        await settle()
        await book.catch_up()
        assert book.qty("BTCUSDT") == 0
    finally:
        await book.stop()


async def test_a_fill_the_bus_lost_is_booked_from_the_database_at_the_next_resync(
    migrated_engine: AsyncEngine,
) -> None:
    repository = TradingRepository(session_factory(migrated_engine))
    booked: list[str] = []
    follower = FillFollower(InProcessBus(), repository, VENUE, lambda f: booked.append(f.trade_id))
    await follower.start()
    try:
        await repository.save(fills=[fill(7)])  # journaled; its bus event never came
        assert booked == []
        await follower.catch_up()
        assert booked == ["t7"]
    finally:
        await follower.stop()


async def test_fills_wait_until_the_accounts_starting_cash_is_known(
    migrated_engine: AsyncEngine,
) -> None:
    repository = TradingRepository(session_factory(migrated_engine))
    await repository.save(fills=[fill(1)])
    book = SharedBook(repository, LatestPriceCache(), VENUE, None)
    await book.start()
    try:
        assert book.portfolio() is None and book.qty("BTCUSDT") == 0
        book.know_starting_cash(Decimal("500"))
        book.know_starting_cash(Decimal("999"))  # the first answer stands
        portfolio = book.portfolio()
        assert portfolio is not None
        assert (portfolio.starting_cash, book.qty("BTCUSDT")) == (Decimal("500"), Decimal("0.5"))
    finally:
        await book.stop()


async def test_a_worker_skips_its_own_orders_on_the_bus(migrated_engine: AsyncEngine) -> None:
    repository = TradingRepository(session_factory(migrated_engine))
    bus = InProcessBus()
    booked: list[str] = []
    follower = FillFollower(
        bus,
        repository,
        VENUE,
        lambda f: booked.append(f.trade_id),
        load_all=False,
        skip_order=lambda cid: cid == "c1",
    )
    await repository.save(fills=[fill(9)])
    await follower.start()
    try:
        bus.publish("fills", fill_payload(fill(1)))
        bus.publish("fills", {"client_order_id": "broken"})
        bus.publish("fills", fill_payload(fill(2)))
        await settle()
        assert booked == ["t2"]  # t9 was stored before: the caller booked it already
        assert follower.malformed == 1
    finally:
        await follower.stop()
