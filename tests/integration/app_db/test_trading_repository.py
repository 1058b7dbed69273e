"""The trading journal's storage: rounds of any size, idempotent upserts, exact money."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.domain.fills import Fill
from trademk.domain.order_events import OrderAccepted, OrderFilled, OrderSubmitted
from trademk.domain.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from trademk.domain.position import Position
from trademk.storage.database import session_factory
from trademk.storage.trading_repository import SAVE_CHUNK, TradingRepository

T0 = 1_767_225_600_000_000_000
STALE_NS = 100_000_000  # 0.1 s


def accepted(n: int) -> Order:
    order = Order(
        client_order_id=f"c{n}",
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        type=OrderType.MARKET,
        qty=Decimal("0.00012345"),
        venue="paper",
        created_ns=T0 + n,
        time_in_force=TimeInForce.GTC,
    )
    order.apply(OrderSubmitted(order.client_order_id, T0 + n))
    order.apply(OrderAccepted(order.client_order_id, T0 + n, f"v{n}"))
    return order


def fill_of(order: Order, n: int) -> Fill:
    return Fill(
        client_order_id=order.client_order_id,
        venue_order_id=f"v{n}",
        trade_id=f"t{n}",
        symbol=order.symbol,
        side=order.side,
        qty=order.qty,
        price=Decimal("65000.123456789"),
        fee=Decimal("0.000000001"),
        ts_ns=T0 + n,
        venue="paper",
    )


async def test_a_round_larger_than_a_chunk_is_written_whole_and_rewritten_idempotently(
    migrated_engine: AsyncEngine,
) -> None:
    repository = TradingRepository(session_factory(migrated_engine))
    count = SAVE_CHUNK * 3 + 5
    orders = [accepted(n) for n in range(count)]
    await repository.save(orders=orders)
    fills = [fill_of(order, n) for n, order in enumerate(orders)]
    for order, fill in zip(orders, fills, strict=True):
        order.apply(OrderFilled(order.client_order_id, fill.ts_ns, fill))
    position = Position("BTCUSDT", "paper")
    for fill in fills:
        position.apply(fill)
    # The same orders again (now filled), their fills twice, the position: one row each.
    await repository.save(orders=orders, fills=fills + fills[:7], positions=[position])

    stored = await repository.order_records(limit=1000)
    assert len(stored) == count
    assert {r.status for r in stored} == {str(OrderStatus.FILLED)}
    stored_fills = await repository.fills("paper")
    assert sorted(f.trade_id for f in stored_fills) == sorted(f.trade_id for f in fills)
    assert {f.price for f in stored_fills} == {Decimal("65000.123456789")}
    assert {f.fee for f in stored_fills} == {Decimal("0.000000001")}
    positions = await repository.position_records()
    assert [(p.symbol, p.qty) for p in positions] == [("BTCUSDT", Decimal("0.00012345") * count)]


async def test_exactly_one_caller_takes_over_an_order_claimed_but_never_sent(
    migrated_engine: AsyncEngine,
) -> None:
    repository = TradingRepository(session_factory(migrated_engine))
    claimed = Order(
        client_order_id="orphan",
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        type=OrderType.MARKET,
        qty=Decimal("0.1"),
        venue="paper",
        created_ns=T0,
        time_in_force=TimeInForce.GTC,
    )
    assert await repository.claim(claimed)
    assert not await repository.claim(claimed)
    await asyncio.sleep(0.3)
    # Claimed 0.3 s ago and still INITIALIZED: stale for anyone waiting 0.1 s.
    assert await repository.take_over("orphan", time.time_ns(), STALE_NS)
    # Taking it over touched it: a second survivor finds it fresh again.
    assert not await repository.take_over("orphan", time.time_ns(), STALE_NS)

    sent = accepted(1)
    await repository.save(orders=[sent])
    await asyncio.sleep(0.3)
    assert not await repository.take_over(sent.client_order_id, time.time_ns(), STALE_NS)
    assert not await repository.take_over("never-claimed", time.time_ns(), STALE_NS)
