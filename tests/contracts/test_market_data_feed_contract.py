"""MarketDataFeed contract: the simulated market and the Redis tick relay (DESIGN.md §3, §5).

``sim`` is a ``SimFeed`` in fast mode. ``relay`` is a ``RedisTickFeed`` reading
what a ``RedisTickPublisher`` (its own Redis client, as in the ingest process)
writes from another ``SimFeed`` that also ticks a symbol nobody subscribes to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from trademk.domain.market import Tick
from trademk.domain.ports import MarketDataFeed
from trademk.engine.clock import SimClock
from trademk.messaging.redis_ticks import RedisTickFeed, RedisTickPublisher
from trademk.venues.sim.feed import SimFeed

START_NS = 1_767_225_600_000_000_000  # 2026-01-01 00:00 UTC
SUBSCRIBED = ["BTCUSDT", "ETHUSDT"]
COMMON_STATUS_KEYS = {
    "name", "state", "reason", "connected", "symbols", "messages", "ticks", "bars",
    "reconnects", "parse_errors", "duplicates", "last_message_ns", "last_error",
}  # fmt: skip


def sim_feed(symbols: list[str] | None = None) -> SimFeed:
    return SimFeed(SimClock(START_NS), symbols=symbols or [], seed=7, realtime=False)


async def publish_forever(source: SimFeed, publisher: RedisTickPublisher) -> None:
    """Relay the source's ticks in small bursts, as a live ingest process would."""
    burst = 0
    async for tick in source.stream():
        if isinstance(tick, Tick):
            publisher.on_tick(tick)
        burst += 1
        if burst % 50 == 0:
            await asyncio.sleep(0.002)


@contextlib.asynccontextmanager
async def relay_feed(redis_url: str, stream: str) -> AsyncIterator[RedisTickFeed]:
    publisher_client = aioredis.from_url(redis_url)
    feed_client = aioredis.from_url(redis_url)
    publisher = RedisTickPublisher(publisher_client, stream)
    source = sim_feed([*SUBSCRIBED, "SOLUSDT"])
    await publisher.start()
    driver = asyncio.create_task(publish_forever(source, publisher))
    feed = RedisTickFeed(feed_client, stream, block_ms=100)
    try:
        yield feed
    finally:
        await feed.close()
        await source.close()
        driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver
        await publisher.stop()
        await publisher_client.delete(stream)
        for client in (publisher_client, feed_client):
            await client.aclose()


@pytest.fixture(params=["sim", "relay"])
def implementation(request: pytest.FixtureRequest) -> tuple[str, str | None, str]:
    """(implementation, Redis URL, stream name); resolved outside the event loop."""
    if request.param == "relay":
        stream = f"{request.getfixturevalue('unique_name')}:ticks"
        return "relay", request.getfixturevalue("redis_url"), stream
    return "sim", None, ""


@pytest.fixture
async def feed(implementation: tuple[str, str | None, str]) -> AsyncIterator[MarketDataFeed]:
    kind, redis_url, stream = implementation
    if kind == "sim":
        sim = sim_feed()
        yield sim
        await sim.close()
        return
    assert redis_url is not None
    async with relay_feed(redis_url, stream) as relay:
        yield relay


async def take(feed: MarketDataFeed, count: int) -> list[Any]:
    items: list[Any] = []
    async with asyncio.timeout(10):
        async for item in feed.stream():
            items.append(item)
            if len(items) == count:
                break
    return items


async def finishes(awaitable: Awaitable[Any], within: float = 3.0) -> None:
    async with asyncio.timeout(within):
        await awaitable


def consume(feed: MarketDataFeed, on_item: Callable[[Any], None]) -> asyncio.Task[None]:
    async def run() -> None:
        async for item in feed.stream():
            on_item(item)

    return asyncio.create_task(run())


def test_it_implements_the_port(feed: MarketDataFeed) -> None:
    assert isinstance(feed, MarketDataFeed)
    assert feed.name


async def test_the_stream_yields_only_ticks_of_subscribed_symbols_in_time_order(
    feed: MarketDataFeed,
) -> None:
    await feed.subscribe(SUBSCRIBED)
    items = await take(feed, 300)

    assert all(isinstance(item, Tick) for item in items)
    assert {item.symbol for item in items} == set(SUBSCRIBED)
    for symbol in SUBSCRIBED:
        stamps = [item.ts for item in items if item.symbol == symbol]
        assert stamps == sorted(stamps) and stamps[0] > 0
    assert all(item.price > 0 for item in items)


async def test_status_reports_the_common_keys_and_what_was_received(
    feed: MarketDataFeed,
) -> None:
    await feed.subscribe(SUBSCRIBED)
    await take(feed, 50)
    status = feed.status()

    assert status.keys() >= COMMON_STATUS_KEYS
    assert status["name"] == feed.name
    assert (status["state"], status["connected"]) == ("running", True)
    assert set(status["symbols"]) == set(SUBSCRIBED)
    assert status["ticks"] >= 50 and status["messages"] >= 1
    assert isinstance(status["last_message_ns"], int)


async def test_close_ends_the_stream_promptly(feed: MarketDataFeed) -> None:
    await feed.subscribe(SUBSCRIBED)
    seen: list[Any] = []
    consumer = consume(feed, seen.append)
    async with asyncio.timeout(10):
        while not seen:
            await asyncio.sleep(0.005)

    await feed.close()
    await finishes(consumer)
    assert feed.status()["state"] == "stopped"


async def test_a_feed_has_one_stream_at_a_time(feed: MarketDataFeed) -> None:
    await feed.subscribe(SUBSCRIBED)
    seen: list[Any] = []
    consumer = consume(feed, seen.append)
    async with asyncio.timeout(10):
        while not seen:
            await asyncio.sleep(0.005)

    with pytest.raises(RuntimeError):
        await anext(feed.stream())
    await feed.close()
    await finishes(consumer)
