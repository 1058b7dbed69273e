"""MessageBus contract: the in-process bus and the Redis relay bus (DESIGN.md §3, §5).

The Redis bus runs twice: ``redis-local`` (publisher and subscribers on one bus,
which must not receive their own events a second time through Redis) and
``redis-remote`` (publish on bus A, subscribe on bus B in "another process").
``settle()`` waits until everything published has gone through Redis, so each
test then asserts exactly what every subscriber holds. Events of one topic keep
their order everywhere; across topics, only the in-process bus keeps it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis

from trademk.engine.bus import InProcessBus, Subscription
from trademk.messaging.redis_bus import RedisEventBus
from trademk.venues.reconnect import ExponentialBackoff

BACKENDS = ["in-process", "redis-local", "redis-remote"]


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


class BusUnderTest:
    """Publishes on ``publisher``, subscribes on ``receiver`` (the same bus unless remote)."""

    def __init__(self, publisher: Any, receiver: Any) -> None:
        self.publisher = publisher
        self.receiver = receiver
        self.through_redis = 0

    def publish(self, topic: str, payload: Mapping[str, Any]) -> None:
        if isinstance(self.receiver, RedisEventBus) and topic in self.receiver.status()["topics"]:
            self.through_redis += 1
        self.publisher.publish(topic, payload)

    async def subscribe(self, *topics: str, capacity: int = 1000) -> Subscription:
        subscription: Subscription = self.receiver.subscribe(*topics, capacity=capacity)
        if isinstance(self.receiver, RedisEventBus):
            await self.receiver.watch(*topics)
        return subscription

    async def settle(self) -> None:
        """Wait until the receiving bus has read back every event sent through Redis."""
        if not isinstance(self.receiver, RedisEventBus):
            return
        counters = self.receiver.counters
        counter = "own_skipped" if self.receiver is self.publisher else "relayed"
        await wait_until(lambda: getattr(counters, counter) >= self.through_redis)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(backend name, Redis URL); resolved outside the event loop."""
    if request.param.startswith("redis"):
        return request.param, request.getfixturevalue("redis_url")
    return request.param, None


@pytest.fixture
async def bus(backend: tuple[str, str | None], unique_name: str) -> AsyncIterator[BusUnderTest]:
    name, redis_url = backend
    if redis_url is None:
        local = InProcessBus()
        yield BusUnderTest(local, local)
        return
    client = aioredis.from_url(redis_url)
    prefix = f"{unique_name}:events"

    def make(origin: str) -> RedisEventBus:
        return RedisEventBus(
            client,
            InProcessBus(),
            prefix=prefix,
            origin=origin,
            block_ms=50,
            backoff=ExponentialBackoff(0.01, 0.1),
        )

    publisher = make("process-a")
    receiver = make("process-b") if name == "redis-remote" else publisher
    for started in {publisher, receiver}:
        await started.start()
    try:
        yield BusUnderTest(publisher, receiver)
    finally:
        for started in {publisher, receiver}:
            await started.stop()
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def held(subscription: Subscription) -> list[tuple[str, Mapping[str, Any]]]:
    """Everything waiting in a subscription (``get`` returns at once while some is pending)."""
    return [await subscription.get() for _ in range(subscription.pending())]


async def test_every_subscriber_of_a_topic_receives_every_event_in_order(
    bus: BusUnderTest,
) -> None:
    subscribers = [await bus.subscribe("fills") for _ in range(3)]
    for n in range(5):
        bus.publish("fills", {"n": n})
    await bus.settle()

    expected = [("fills", {"n": n}) for n in range(5)]
    for subscription in subscribers:
        assert subscription.pending() == 5
        assert [await subscription.get() for _ in range(5)] == expected
        assert subscription.pending() == 0


async def test_a_closed_subscription_receives_nothing_more(bus: BusUnderTest) -> None:
    leaving = await bus.subscribe("orders")
    staying = await bus.subscribe("orders")
    bus.publish("orders", {"n": 1})
    await bus.settle()
    leaving.close()
    bus.publish("orders", {"n": 2})
    await bus.settle()

    assert await held(leaving) == [("orders", {"n": 1})]
    assert await held(staying) == [("orders", {"n": 1}), ("orders", {"n": 2})]
    with pytest.raises(StopAsyncIteration):
        await leaving.get()


async def test_a_full_subscription_drops_its_oldest_events_and_counts_them(
    bus: BusUnderTest,
) -> None:
    slow = await bus.subscribe("ticks", capacity=3)
    for n in range(5):
        bus.publish("ticks", {"n": n})
    await bus.settle()

    assert slow.take_dropped() == 2
    assert slow.take_dropped() == 0
    assert await held(slow) == [("ticks", {"n": n}) for n in (2, 3, 4)]


async def test_events_reach_only_subscribers_of_their_topic(bus: BusUnderTest) -> None:
    only_a = await bus.subscribe("a")
    only_b = await bus.subscribe("b")
    both = await bus.subscribe("a", "b")
    bus.publish("a", {"n": 0})
    bus.publish("b", {"n": 0})
    bus.publish("c", {"n": 0})
    bus.publish("a", {"n": 1})
    await bus.settle()

    assert await held(only_a) == [("a", {"n": 0}), ("a", {"n": 1})]
    assert await held(only_b) == [("b", {"n": 0})]
    received = await held(both)
    assert [item for item in received if item[0] == "a"] == [("a", {"n": 0}), ("a", {"n": 1})]
    assert [item for item in received if item[0] == "b"] == [("b", {"n": 0})]
    assert len(received) == 3


async def test_a_json_ready_payload_arrives_equal(bus: BusUnderTest) -> None:
    payload = {
        "client_order_id": "abc-1",
        "qty": "0.00012300",
        "filled": 3,
        "price": 64123.5,
        "avg_fill_price": None,
        "final": True,
        "legs": [1, "two", None],
        "venue": {"name": "paper", "latency_ms": 1.25},
    }
    subscription = await bus.subscribe("orders")
    bus.publish("orders", payload)
    await bus.settle()

    assert await held(subscription) == [("orders", payload)]


async def test_has_subscribers_is_true_once_someone_subscribed(bus: BusUnderTest) -> None:
    receiver = bus.receiver
    if isinstance(receiver, InProcessBus):
        assert not receiver.has_subscribers("alerts")
    subscription = await bus.subscribe("alerts")
    assert receiver.has_subscribers("alerts")
    subscription.close()
    if isinstance(receiver, InProcessBus):
        assert not receiver.has_subscribers("alerts")
    else:  # every forwarded topic may have subscribers in another process
        assert receiver.has_subscribers("alerts")
