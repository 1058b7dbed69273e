"""A strategy in one process, the OMS in another: orders over the signal stream, fills back.

Two sides in this test process, each with its own Redis client, event bus and
signal queue, as ``trademk worker --role strategies`` and ``trademk worker
--role execution`` would have: the strategies side runs a ``StrategyRunner`` on a
``RemoteOrderGateway``; the execution side a ``TradingCore`` (risk, OMS, paper
venue) consuming the signal stream. Both price caches get the same trades (the
tick relay's job in a deployment).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support.paper_chain import paper_chain
from trademk.backtest.event_support import InMemoryJournal
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Bar, Tick, TickKind
from trademk.domain.orders import OrderStatus
from trademk.engine.bus import Subscription
from trademk.engine.clock import SimClock
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.remote_orders import RemoteOrderGateway
from trademk.engine.strategy_runner import RunnerOptions, StrategyRunner
from trademk.engine.strategy_spec import StrategySpec
from trademk.engine.trading import TradingCore
from trademk.messaging.redis_bus import RedisEventBus
from trademk.messaging.redis_signals import RedisSignalQueue
from trademk.strategies import Sizing, Strategy

T0 = 1_767_225_600 * NANOS_PER_SECOND  # 2026-01-01T00:00:00Z
MINUTE = 60 * NANOS_PER_SECOND
CLASSES = {"BTCUSDT": AssetClass.CRYPTO}


class BuyFirstBar(Strategy):
    """Buys one unit on the first bar it decides on, then holds."""

    def on_start(self) -> None:
        self.decided = 0

    def on_bar(self, bar: Bar) -> None:
        self.decided += 1
        if self.decided == 1:
            self.buy(Sizing.units(1))


def resolve(name: str) -> type[Strategy]:
    if name != "buy_first_bar":
        raise KeyError(f"unknown strategy {name!r}")
    return BuyFirstBar


@dataclass
class Execution:
    core: TradingCore
    journal: InMemoryJournal
    prices: LatestPriceCache


async def start_execution(
    client: aioredis.Redis, prefix: str, clock: SimClock
) -> tuple[Execution, RedisEventBus, RedisSignalQueue]:
    bus = RedisEventBus(client, prefix=f"{prefix}:events", origin="execution", block_ms=50)
    signals = RedisSignalQueue(client, stream=f"{prefix}:signals", block_ms=50)
    prices = LatestPriceCache()
    journal = InMemoryJournal()
    chain = paper_chain(clock, prices, CLASSES, journal=journal, events=bus)
    core = TradingCore(
        oms=chain.oms,
        risk=chain.risk,
        journal=chain.writer,
        signals=signals,
        prices=prices,
        repository=journal,
    )
    await bus.start()
    await chain.venue.start()
    await core.start(journal)
    return Execution(core, journal, prices), bus, signals


async def events_of(subscription: Subscription, kind: str) -> Mapping[str, Any]:
    async with asyncio.timeout(10):
        while True:
            _topic, payload = await subscription.get()
            if payload.get("kind") == kind:
                return payload


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    strategies, execution = aioredis.from_url(redis_url), aioredis.from_url(redis_url)
    try:
        yield strategies, execution
    finally:
        await strategies.aclose()
        await execution.aclose()


async def test_a_strategy_gets_the_fill_of_an_order_executed_in_another_process(
    clients: tuple[aioredis.Redis, aioredis.Redis], unique_name: str
) -> None:
    clock = SimClock(T0)
    execution, exec_bus, exec_signals = await start_execution(clients[1], unique_name, clock)
    bus = RedisEventBus(
        clients[0], prefix=f"{unique_name}:events", origin="strategies", block_ms=50
    )
    signals = RedisSignalQueue(clients[0], stream=f"{unique_name}:signals")
    prices = LatestPriceCache()
    gateway = RemoteOrderGateway(signals, bus, clock, "paper", CLASSES)
    runner = StrategyRunner(
        gateway,
        prices,
        clock,
        bus,
        options=RunnerOptions(close_interval=3600, settle_timeout=10.0),
        resolve=resolve,
    )
    events = bus.subscribe("strategies")
    await bus.start()
    await gateway.start()
    await runner.start()
    try:
        spec = StrategySpec(
            strategy_id="s-remote",
            name="remote",
            strategy_class="buy_first_bar",
            symbols=("BTCUSDT",),
            interval="1m",
            capital=Decimal("1000"),
            params={},
        )
        running = await runner.start_strategy(spec)
        # A strategy decides from its second bar on: the third trade closes that bar.
        for minute, price in enumerate((100.0, 101.0, 102.0)):
            ts = T0 + minute * MINUTE + NANOS_PER_SECOND
            clock.set(ts)
            tick = Tick("BTCUSDT", "X", TickKind.TRADE, ts, price, 1.0)
            execution.prices.update(tick)
            prices.update(tick)
        order_event = await events_of(events, "order")
        await runner.idle()

        assert order_event["status"] == str(OrderStatus.FILLED)
        assert running.book.qty("BTCUSDT") == Decimal(1)
        assert running.orders == 1
        cid = order_event["client_order_id"]
        ours = gateway.order(cid)
        theirs = execution.core.oms.order(cid)
        assert ours is not None and theirs is not None
        assert theirs.strategy_id == "s-remote"
        assert ours.status is theirs.status is OrderStatus.FILLED
        assert ours.avg_fill_price == theirs.avg_fill_price == Decimal("102.0")
        assert execution.core.portfolio.qty("BTCUSDT") == Decimal(1)
        await execution.core.journal.flush()
        [fill] = await execution.journal.fills("paper")
        assert fill.strategy_id == "s-remote"
    finally:
        await runner.stop()
        await gateway.stop()
        await bus.stop()
        await exec_signals.stop()  # ends the consumer before the core stops its task
        await execution.core.stop()
        await exec_bus.stop()
