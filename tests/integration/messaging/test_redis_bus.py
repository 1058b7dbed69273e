"""RedisEventBus on the real Redis: two "processes" (two buses with their own origins).

Bus A and bus B share Redis and nothing else, as an API process and an execution
worker do. Outages are made with a TCP proxy in front of Redis.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.fakes.tcp_proxy import TcpProxy
from trademk.engine.bus import InProcessBus, Subscription
from trademk.messaging.codec import PayloadEncodingError
from trademk.messaging.redis_bus import RedisEventBus
from trademk.venues.reconnect import ExponentialBackoff

pytestmark = pytest.mark.redis


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def drain(subscription: Subscription) -> list[tuple[str, Mapping[str, Any]]]:
    return [await subscription.get() for _ in range(subscription.pending())]


class BusFactory:
    """Builds buses on one key prefix and stops them all at the end."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.buses: list[RedisEventBus] = []

    async def start(self, client: aioredis.Redis, origin: str, **options: Any) -> RedisEventBus:
        settings: dict[str, Any] = {"block_ms": 50, "backoff": ExponentialBackoff(0.01, 0.05)}
        settings.update(options)
        bus = RedisEventBus(client, InProcessBus(), prefix=self.prefix, origin=origin, **settings)
        await bus.start()
        self.buses.append(bus)
        return bus


@pytest.fixture
async def buses(redis_client: aioredis.Redis, unique_name: str) -> AsyncIterator[BusFactory]:
    """Request it after ``proxy``: the buses then stop before the proxy closes."""
    factory = BusFactory(f"{unique_name}:events")
    yield factory
    for bus in factory.buses:
        await bus.stop()
    keys = [key async for key in redis_client.scan_iter(match=f"{factory.prefix}:*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture
async def proxy(redis_client: aioredis.Redis) -> AsyncIterator[TcpProxy]:
    server = redis_client.connection_pool.connection_kwargs
    async with TcpProxy(server["host"], server.get("port", 6379)) as tcp_proxy:
        yield tcp_proxy


@pytest.fixture
async def proxied_client(proxy: TcpProxy) -> AsyncIterator[aioredis.Redis]:
    """A client whose connections go through ``proxy``; our backoff does the retrying."""
    client = aioredis.from_url(f"redis://127.0.0.1:{proxy.port}/0", retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


async def test_an_event_reaches_every_subscriber_of_both_processes_exactly_once(
    redis_client: aioredis.Redis, buses: BusFactory
) -> None:
    a = await buses.start(redis_client, "api", topics=["fills"])
    b = await buses.start(redis_client, "worker", topics=["fills"])
    on_a = [a.subscribe("fills") for _ in range(2)]
    on_b = [b.subscribe("fills") for _ in range(2)]
    for n in range(100):
        a.publish("fills", {"from": "api", "n": n})
        b.publish("fills", {"from": "worker", "n": n})
    await wait_until(lambda: a.counters.relayed == 100 and b.counters.relayed == 100)
    await wait_until(lambda: a.counters.own_skipped == 100 and b.counters.own_skipped == 100)

    for subscription in on_a + on_b:
        received = [(payload["from"], payload["n"]) for _, payload in await drain(subscription)]
        assert len(received) == 200
        assert Counter(received) == Counter(
            [(origin, n) for origin in ("api", "worker") for n in range(100)]
        )
        for origin in ("api", "worker"):
            assert [n for o, n in received if o == origin] == list(range(100))


async def test_a_topic_subscribed_after_start_is_relayed_from_then_on(
    redis_client: aioredis.Redis, buses: BusFactory
) -> None:
    a = await buses.start(redis_client, "api")
    b = await buses.start(redis_client, "worker")
    a.publish("late", {"n": 0})  # before anyone listens: not delivered to B
    await wait_until(lambda: a.counters.written == 1)
    subscription = b.subscribe("late")
    assert b.status()["topics_not_yet_watched"] == ["late"]
    await wait_until(lambda: "late" in b.status()["topics"])
    a.publish("late", {"n": 1})
    await wait_until(lambda: b.counters.relayed == 1)

    assert await drain(subscription) == [("late", {"n": 1})]
    assert b.status()["topics_not_yet_watched"] == []


async def test_events_published_during_an_outage_are_written_when_redis_returns(
    redis_client: aioredis.Redis,
    proxy: TcpProxy,
    proxied_client: aioredis.Redis,
    buses: BusFactory,
) -> None:
    a = await buses.start(proxied_client, "api", topics=["orders"])
    b = await buses.start(redis_client, "worker", topics=["orders"])
    local = a.subscribe("orders")
    remote = b.subscribe("orders")
    await proxy.cut()
    for n in range(50):
        a.publish("orders", {"n": n})
    assert len(await drain(local)) == 50  # local subscribers never wait for Redis
    await wait_until(lambda: a.counters.reconnects >= 1)
    assert a.status()["state"] == "degraded"
    assert a.status()["buffered"] == 50

    await proxy.restore()
    await wait_until(lambda: b.counters.relayed == 50)
    await wait_until(lambda: a.counters.own_skipped == 50 and a.counters.written == 50)

    assert await drain(remote) == [("orders", {"n": n}) for n in range(50)]
    assert local.pending() == 0
    assert (a.counters.dropped, a.status()["state"], a.status()["buffered"]) == (0, "running", 0)


async def test_a_long_outage_drops_the_oldest_queued_events_and_counts_them(
    redis_client: aioredis.Redis,
    proxy: TcpProxy,
    proxied_client: aioredis.Redis,
    buses: BusFactory,
) -> None:
    a = await buses.start(proxied_client, "api", buffer_capacity=10)
    b = await buses.start(redis_client, "worker", topics=["ticks"])
    remote = b.subscribe("ticks")
    await proxy.cut()
    for n in range(25):
        a.publish("ticks", {"n": n})
    assert a.counters.dropped == 15

    await wait_until(lambda: a.counters.reconnects >= 1)
    await proxy.restore()
    await wait_until(lambda: b.counters.relayed == 10)

    assert await drain(remote) == [("ticks", {"n": n}) for n in range(15, 25)]
    assert a.status()["dropped"] == 15


async def test_the_relay_reconnects_and_misses_nothing_published_meanwhile(
    redis_client: aioredis.Redis,
    proxy: TcpProxy,
    proxied_client: aioredis.Redis,
    buses: BusFactory,
) -> None:
    a = await buses.start(redis_client, "worker")
    b = await buses.start(proxied_client, "api", topics=["fills"])
    remote = b.subscribe("fills")
    a.publish("fills", {"n": 0})
    await wait_until(lambda: b.counters.relayed == 1)
    await proxy.cut()
    for n in range(1, 31):
        a.publish("fills", {"n": n})
    await wait_until(lambda: a.counters.written == 31 and b.counters.reconnects >= 1)
    await proxy.restore()
    await wait_until(lambda: b.counters.relayed == 31)

    assert await drain(remote) == [("fills", {"n": n}) for n in range(31)]
    assert b.connected


async def test_an_entry_written_twice_is_delivered_once_and_a_malformed_one_is_skipped(
    redis_client: aioredis.Redis, buses: BusFactory
) -> None:
    a = await buses.start(redis_client, "worker")
    b = await buses.start(redis_client, "api", topics=["fills"])
    remote = b.subscribe("fills")
    a.publish("fills", {"n": 1})
    await wait_until(lambda: a.counters.written == 1)
    key = a.stream_key("fills")
    [(_, written)] = await redis_client.xrange(key)
    await redis_client.xadd(key, written)  # a pipeline retried after a lost reply
    await redis_client.xadd(key, {"o": "someone", "p": b"{not json"})
    a.publish("fills", {"n": 2})
    await wait_until(lambda: b.counters.relayed == 2)
    await wait_until(lambda: b.counters.duplicates == 1 and b.counters.malformed == 1)

    assert await drain(remote) == [("fills", {"n": 1}), ("fills", {"n": 2})]


async def test_payloads_must_be_json_and_decimals_travel_as_exact_strings(
    redis_client: aioredis.Redis, buses: BusFactory
) -> None:
    a = await buses.start(redis_client, "worker")
    b = await buses.start(redis_client, "api", topics=["positions"])
    local = a.subscribe("positions")
    remote = b.subscribe("positions")

    with pytest.raises(PayloadEncodingError, match="not JSON-serializable"):
        a.publish("positions", {"when": object()})
    with pytest.raises(ValueError, match="non-empty string"):
        a.publish("", {"n": 1})
    a.publish("positions", {"qty": Decimal("0.10"), "avg": Decimal("1E-8")})
    await wait_until(lambda: b.counters.relayed == 1)

    assert await drain(local) == [("positions", {"qty": Decimal("0.10"), "avg": Decimal("1E-8")})]
    assert await drain(remote) == [("positions", {"qty": "0.10", "avg": "1E-8"})]
    assert a.counters.published == 1


async def test_topics_not_forwarded_stay_in_the_process(
    redis_client: aioredis.Redis, buses: BusFactory
) -> None:
    a = await buses.start(redis_client, "ingest", forward=lambda topic: topic != "ticks")
    b = await buses.start(redis_client, "api", topics=["ticks", "bars"])
    local = a.subscribe("ticks")
    remote = b.subscribe("ticks", "bars")
    assert a.has_subscribers("bars")  # forwarded: someone elsewhere may listen
    assert a.has_subscribers("ticks")  # not forwarded, but subscribed here

    a.publish("ticks", {"n": 1})
    a.publish("bars", {"n": 1})
    await wait_until(lambda: b.counters.relayed == 1)

    assert await drain(local) == [("ticks", {"n": 1})]
    assert await drain(remote) == [("bars", {"n": 1})]
    assert await redis_client.exists(a.stream_key("ticks")) == 0
    assert a.counters.written == 1
    local.close()
    assert not a.has_subscribers("ticks")


async def test_a_bus_started_while_redis_is_unreachable_relays_once_it_is_back(
    redis_client: aioredis.Redis,
    proxy: TcpProxy,
    proxied_client: aioredis.Redis,
    buses: BusFactory,
) -> None:
    await proxy.cut()
    b = await buses.start(proxied_client, "api", topics=["fills"])
    remote = b.subscribe("fills")
    assert b.status()["state"] == "degraded"
    assert b.status()["topics_not_yet_watched"] == ["fills"]
    a = await buses.start(redis_client, "worker")

    await proxy.restore()
    await wait_until(lambda: b.status()["topics"] == ["fills"])
    a.publish("fills", {"n": 1})
    await wait_until(lambda: b.counters.relayed == 1)

    assert await drain(remote) == [("fills", {"n": 1})]
    assert b.status()["state"] == "running"
