"""Tick relay on the real Redis: a publisher in one "process", feeds in others.

The publisher and each feed use their own Redis clients, as the ingest worker and
an execution worker would. Outages are made with ``CLIENT KILL`` and with a TCP
proxy in front of Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.fakes.tcp_proxy import TcpProxy
from trademk.domain.market import Tick, TickKind
from trademk.messaging.redis_ticks import RedisTickFeed, RedisTickPublisher
from trademk.venues.reconnect import ExponentialBackoff

pytestmark = pytest.mark.redis

T0 = 1_767_225_600_000_000_000  # 2026-01-01 00:00 UTC in ns
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def make_ticks(count: int, symbols: Iterable[str] = SYMBOLS, start: int = 0) -> list[Tick]:
    """Distinct trades and quotes, cycling through ``symbols``, timestamps increasing."""
    cycle = list(symbols)
    ticks = []
    for n in range(start, start + count):
        symbol = cycle[n % len(cycle)]
        if n % 2:
            tick = Tick(symbol, "BINANCE", TickKind.TRADE, T0 + n, 100.0 + n / 100, 0.5, seq=n)
        else:
            tick = Tick(
                symbol, "BINANCE", TickKind.QUOTE, T0 + n, 100.005 + n / 100, 0.0,
                100.0 + n / 100, 1.5, 100.01 + n / 100, 2.5, n, T0 + n + 1_000,
            )  # fmt: skip
        ticks.append(tick)
    return ticks


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.005)


class Consumer:
    """Reads a feed's ``stream()`` in a task, as the market-data pump does."""

    def __init__(self, feed: RedisTickFeed) -> None:
        self.feed = feed
        self.ticks: list[Tick] = []
        self._task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for tick in self.feed.stream():
            self.ticks.append(tick)

    async def has(self, count: int) -> list[Tick]:
        await wait_until(lambda: len(self.ticks) >= count)
        return self.ticks

    async def stop(self) -> None:
        await self.feed.close()
        async with asyncio.timeout(5):
            await self._task


class Relay:
    """Publishers and feeds on one stream, each with its own client; all stopped at the end."""

    def __init__(self, redis_url: str, stream: str) -> None:
        self.redis_url = redis_url
        self.stream = stream
        self.clients: list[aioredis.Redis] = []
        self.publishers: list[RedisTickPublisher] = []
        self.consumers: list[Consumer] = []

    def client(self, url: str | None = None, **options: Any) -> aioredis.Redis:
        client = aioredis.from_url(url or self.redis_url, **options)
        self.clients.append(client)
        return client

    async def publisher(
        self, client: aioredis.Redis | None = None, **options: Any
    ) -> RedisTickPublisher:
        settings: dict[str, Any] = {"backoff": ExponentialBackoff(0.01, 0.05)}
        settings.update(options)
        publisher = RedisTickPublisher(client or self.client(), self.stream, **settings)
        await publisher.start()
        self.publishers.append(publisher)
        return publisher

    async def consumer(
        self,
        symbols: Iterable[str] = SYMBOLS,
        client: aioredis.Redis | None = None,
        **options: Any,
    ) -> Consumer:
        """A feed reading in a task, connected (its starting point fixed) before returning."""
        settings: dict[str, Any] = {"block_ms": 100, "backoff": ExponentialBackoff(0.01, 0.05)}
        settings.update(options)
        feed = RedisTickFeed(client or self.client(), self.stream, **settings)
        await feed.subscribe(list(symbols))
        consumer = Consumer(feed)
        self.consumers.append(consumer)
        await wait_until(lambda: feed.status()["connected"])
        return consumer

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        for publisher in self.publishers:
            await publisher.stop()
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self.client().delete(self.stream)
        for client in self.clients:
            await client.aclose()


@pytest.fixture
async def relay(redis_url: str, unique_name: str) -> AsyncIterator[Relay]:
    relay = Relay(redis_url, f"{unique_name}:ticks")
    yield relay
    await relay.close()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    target = aioredis.from_url(redis_url).connection_pool.connection_kwargs
    async with TcpProxy(target["host"], target.get("port", 6379)) as tcp_proxy:
        yield tcp_proxy


def no_retries(proxy: TcpProxy) -> dict[str, Any]:
    """Client options: through the proxy, and our backoff (not redis-py's) does the retrying."""
    return {"url": f"redis://127.0.0.1:{proxy.port}/0", "retry": Retry(NoBackoff(), 0)}


async def test_ticks_arrive_complete_and_in_order_at_a_feed_in_another_process(
    relay: Relay,
) -> None:
    consumer = await relay.consumer()
    publisher = await relay.publisher()
    sent = make_ticks(2_500)
    for tick in sent:
        publisher.on_tick(tick)

    assert await consumer.has(2_500) == sent
    status = publisher.status()
    assert (status["published"], status["written"], status["dropped"]) == (2_500, 2_500, 0)
    assert (status["batches"], status["backlog"], status["state"]) == (3, 0, "running")
    feed_status = consumer.feed.status()
    assert (feed_status["messages"], feed_status["ticks"], feed_status["received"]) == (
        3,
        2_500,
        2_500,
    )
    assert feed_status["last_message_ns"] is not None


async def test_a_feed_yields_only_its_subscribed_symbols(relay: Relay) -> None:
    consumer = await relay.consumer(symbols=["BTCUSDT", "SOLUSDT"])
    publisher = await relay.publisher()
    sent = make_ticks(600)
    for tick in sent:
        publisher.on_tick(tick)

    await wait_until(lambda: consumer.feed.status()["received"] == 600)
    wanted = [tick for tick in sent if tick.symbol in ("BTCUSDT", "SOLUSDT")]
    assert await consumer.has(len(wanted)) == wanted
    assert consumer.feed.status()["ticks"] == 400
    assert consumer.feed.status()["symbols"] == ["BTCUSDT", "SOLUSDT"]


async def test_a_feed_subscribed_to_nothing_yields_nothing(relay: Relay) -> None:
    silent = await relay.consumer(symbols=[])
    listening = await relay.consumer()
    publisher = await relay.publisher()
    for tick in make_ticks(30):
        publisher.on_tick(tick)

    await listening.has(30)
    await wait_until(lambda: silent.feed.status()["received"] == 30)
    assert silent.ticks == []


async def test_fifty_thousand_ticks_in_batches_arrive_complete_and_in_order(relay: Relay) -> None:
    consumers = [await relay.consumer() for _ in range(2)]
    publisher = await relay.publisher()
    sent = make_ticks(50_000)
    for start in range(0, len(sent), 700):  # a live feed hands ticks over in bursts
        for tick in sent[start : start + 700]:
            publisher.on_tick(tick)
        await asyncio.sleep(0)

    for consumer in consumers:
        assert await consumer.has(50_000) == sent
        assert consumer.feed.status()["messages"] == publisher.status()["batches"]
    assert publisher.status()["batches"] >= 50
    assert publisher.status()["dropped"] == 0


async def _ticks_in_stream(client: aioredis.Redis, stream: str) -> int:
    entries = await client.xrange(stream)
    return sum(len(msgspec.msgpack.decode(fields[b"t"])) for _id, fields in entries)


@contextlib.asynccontextmanager
async def exact_stream_trimming(client: aioredis.Redis) -> AsyncIterator[None]:
    """One entry per stream node, so approximate MAXLEN trims exactly (restored after)."""
    before = (await client.config_get("stream-node-max-entries"))["stream-node-max-entries"]
    await client.config_set("stream-node-max-entries", 1)
    try:
        yield
    finally:
        await client.config_set("stream-node-max-entries", before)


async def test_the_stream_keeps_about_retain_ticks_ticks_whatever_the_batch_size(
    relay: Relay,
) -> None:
    client = relay.client()
    async with exact_stream_trimming(client):
        publisher = await relay.publisher(max_batch=100, retain_ticks=1_000)
        flood = make_ticks(5_000)
        for tick in flood:  # a flood: full batches of 100
            publisher.on_tick(tick)
        await wait_until(lambda: publisher.status()["written"] == 5_000)
        assert await _ticks_in_stream(client, relay.stream) == 1_000
        assert await client.xlen(relay.stream) == 10

        for tick in make_ticks(50, start=5_000):  # quiet: one tick per batch
            publisher.on_tick(tick)
            written = publisher.status()["written"]
            await wait_until(lambda w=written: publisher.status()["written"] > w)
        assert await _ticks_in_stream(client, relay.stream) <= 1_000 + 50
        assert await client.xlen(relay.stream) == 60


async def test_a_feed_started_later_sees_only_newer_ticks(relay: Relay) -> None:
    early = await relay.consumer()
    publisher = await relay.publisher()
    older = make_ticks(100)
    for tick in older:
        publisher.on_tick(tick)
    await wait_until(lambda: publisher.status()["written"] == 100)

    late = await relay.consumer()
    newer = make_ticks(100, start=100)
    for tick in newer:
        publisher.on_tick(tick)

    assert await early.has(200) == older + newer
    assert await late.has(100) == newer
    await wait_until(lambda: late.feed.status()["received"] == 100)
    assert late.ticks == newer


async def test_without_redis_on_tick_never_raises_the_buffer_stays_bounded_and_drops_are_counted(
    relay: Relay, closed_port: int
) -> None:
    unreachable = relay.client(
        f"redis://127.0.0.1:{closed_port}/0", retry=Retry(NoBackoff(), 0), socket_timeout=1
    )
    publisher = await relay.publisher(
        unreachable, buffer_capacity=1_000, max_batch=100, flush_timeout=0.2
    )
    for tick in make_ticks(5_000):
        assert publisher.on_tick(tick) is None
    await wait_until(lambda: publisher.status()["reconnects"] >= 2)
    for tick in make_ticks(5_000, start=5_000):
        publisher.on_tick(tick)

    status = publisher.status()
    assert status["state"] == "degraded" and not status["connected"]
    assert "ConnectionError" in status["last_error"]
    assert status["written"] == 0
    assert status["backlog"] <= 1_000 + 100
    assert status["dropped"] == 10_000 - status["backlog"]

    await publisher.stop()  # bounded by flush_timeout although nothing can be written
    assert publisher.status()["state"] == "stopped"


async def test_after_an_outage_the_publisher_writes_the_newest_ticks_in_order(
    relay: Relay, proxy: TcpProxy
) -> None:
    consumer = await relay.consumer()
    options = no_retries(proxy)
    publisher = await relay.publisher(
        relay.client(options["url"], retry=options["retry"]), buffer_capacity=300, max_batch=50
    )
    first = make_ticks(10)
    for tick in first:
        publisher.on_tick(tick)
    await consumer.has(10)
    await proxy.cut()
    during = make_ticks(1_000, start=10)
    for tick in during:
        publisher.on_tick(tick)
    await wait_until(lambda: publisher.status()["reconnects"] >= 1)
    await proxy.restore()

    await wait_until(lambda: publisher.status()["backlog"] == 0)
    status = publisher.status()
    assert status["written"] + status["dropped"] == 1_010
    received = await consumer.has(status["written"])
    assert received[:10] == first
    assert received[10:] == during[-(status["written"] - 10) :]  # the newest, in order
    assert status["state"] == "running" and status["connected"]


async def test_a_feed_whose_connection_is_killed_reconnects_and_loses_nothing_still_in_the_stream(
    relay: Relay, redis_client: aioredis.Redis, unique_name: str
) -> None:
    name = f"{unique_name}-feed"
    feed_client = relay.client(client_name=name, retry=Retry(NoBackoff(), 0))
    consumer = await relay.consumer(
        client=feed_client, block_ms=2_000, backoff=ExponentialBackoff(0.3, 0.3)
    )
    publisher = await relay.publisher()
    sent = make_ticks(1_000)
    for tick in sent[:500]:
        publisher.on_tick(tick)
    await consumer.has(500)

    clients = [c for c in await redis_client.client_list() if c["name"] == name]
    assert clients, "the feed's connection is not in CLIENT LIST"
    for client in clients:
        await redis_client.client_kill_filter(_id=client["id"])
    await wait_until(lambda: consumer.feed.status()["reconnects"] >= 1)
    assert not consumer.feed.status()["connected"]
    assert consumer.feed.status()["state"] == "degraded"
    for tick in sent[500:]:
        publisher.on_tick(tick)

    assert await consumer.has(1_000) == sent
    status = consumer.feed.status()
    assert status["connected"] and status["state"] == "running"
    assert status["gaps"] == 0


async def test_entries_trimmed_during_an_outage_are_skipped_and_counted_as_a_gap(
    relay: Relay, proxy: TcpProxy, redis_client: aioredis.Redis
) -> None:
    options = no_retries(proxy)
    consumer = await relay.consumer(client=relay.client(options["url"], retry=options["retry"]))
    publisher = await relay.publisher(max_batch=10)
    first = make_ticks(10)
    for tick in first:
        publisher.on_tick(tick)
    await consumer.has(10)

    await proxy.cut()
    await wait_until(lambda: consumer.feed.status()["reconnects"] >= 1)
    during = make_ticks(100, start=10)
    for tick in during:
        publisher.on_tick(tick)
    await wait_until(lambda: publisher.status()["written"] == 110)
    await redis_client.xtrim(relay.stream, maxlen=3, approximate=False)  # 3 batches of 10 left
    await proxy.restore()

    assert await consumer.has(40) == first + during[-30:]
    assert consumer.feed.status()["gaps"] == 1


async def test_a_stream_redis_lost_and_recreated_is_read_from_its_start(
    relay: Relay, proxy: TcpProxy, redis_client: aioredis.Redis
) -> None:
    options = no_retries(proxy)
    consumer = await relay.consumer(client=relay.client(options["url"], retry=options["retry"]))
    publisher = await relay.publisher()
    for tick in make_ticks(5):
        publisher.on_tick(tick)
    await consumer.has(5)

    await proxy.cut()
    await wait_until(lambda: consumer.feed.status()["reconnects"] >= 1)
    await redis_client.delete(relay.stream)  # Redis restarted without persistence ...
    reborn = make_ticks(7, start=5)
    # ... and a writer whose clock is behind ours wrote ids below the feed's position.
    fields = {"w": b"other-writer", "s": 1, "t": msgspec.msgpack.encode(reborn)}
    await redis_client.xadd(relay.stream, fields, id="1-1")
    await proxy.restore()

    assert (await consumer.has(12))[5:] == reborn
    assert consumer.feed.status()["gaps"] == 1


async def test_a_batch_written_twice_is_yielded_once_and_a_malformed_entry_is_skipped(
    relay: Relay, redis_client: aioredis.Redis
) -> None:
    consumer = await relay.consumer()
    publisher = await relay.publisher()
    first = make_ticks(20)
    for tick in first:
        publisher.on_tick(tick)
    await wait_until(lambda: publisher.status()["written"] == 20)
    [(_, written)] = await redis_client.xrange(relay.stream)
    await redis_client.xadd(relay.stream, written)  # an XADD retried after a lost reply
    await redis_client.xadd(relay.stream, {"w": b"x", "s": 1, "t": b"\xc1not msgpack"})
    second = make_ticks(20, start=20)
    for tick in second:
        publisher.on_tick(tick)

    assert await consumer.has(40) == first + second
    await wait_until(lambda: consumer.feed.status()["messages"] == 4)
    status = consumer.feed.status()
    assert (status["duplicates"], status["parse_errors"], status["ticks"]) == (1, 1, 40)
    assert consumer.ticks == first + second


async def test_close_ends_the_stream_and_status_reports_stopped(relay: Relay) -> None:
    consumer = await relay.consumer(block_ms=3_000)
    await consumer.stop()  # the feed was blocked in XREAD for up to 3 s

    status = consumer.feed.status()
    assert (status["state"], status["connected"], status["name"]) == ("stopped", False, "relay")
    assert [tick async for tick in consumer.feed.stream()] == []  # a closed feed stays closed


async def test_a_feed_has_one_consumer_at_a_time(relay: Relay) -> None:
    consumer = await relay.consumer()
    with pytest.raises(RuntimeError, match="already running"):
        consumer.feed.stream()
