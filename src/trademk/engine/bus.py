"""In-process message bus: topic fan-out with bounded per-subscriber queues.

``publish`` never blocks and never waits on a slow subscriber: each
subscription has a bounded queue that drops its oldest message when full and
counts what it dropped, so one slow WebSocket client cannot stall the platform.
The Redis implementation (messaging/redis_bus.py) relays across processes into
the same local fan-out.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol


class MessageBus(Protocol):
    def publish(self, topic: str, payload: Mapping[str, Any]) -> None: ...

    def subscribe(self, *topics: str, capacity: int = 1000) -> Subscription: ...

    def has_subscribers(self, topic: str) -> bool: ...


async def watch_topics(bus: MessageBus, *topics: str) -> None:
    """Make sure ``topics`` reach this process's subscribers from now on.

    The Redis bus relays a topic from other processes once it watches it; the
    in-process bus has nothing to do.
    """
    watch = getattr(bus, "watch", None)
    if watch is not None:
        await watch(*topics)


class Subscription:
    """A bounded mailbox for some topics; iterate it to receive ``(topic, payload)``."""

    def __init__(self, bus: InProcessBus, topics: frozenset[str], capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("a subscription needs a capacity of at least 1")
        self._bus = bus
        self.topics = topics
        self._queue: collections.deque[tuple[str, Mapping[str, Any]]] = collections.deque(
            maxlen=capacity
        )
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def deliver(self, topic: str, payload: Mapping[str, Any]) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((topic, payload))
        self._ready.set()

    def take_dropped(self) -> int:
        """How many messages were dropped since the last call (and reset)."""
        dropped, self.dropped = self.dropped, 0
        return dropped

    def pending(self) -> int:
        return len(self._queue)

    async def get(self) -> tuple[str, Mapping[str, Any]]:
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
        return self

    async def __anext__(self) -> tuple[str, Mapping[str, Any]]:
        return await self.get()

    def close(self) -> None:
        self.closed = True
        self._ready.set()
        self._bus.unsubscribe(self)


class InProcessBus:
    """Fan-out to local subscriptions; the default bus of a single process."""

    def __init__(self) -> None:
        self._by_topic: dict[str, set[Subscription]] = collections.defaultdict(set)
        self.published = 0

    def publish(self, topic: str, payload: Mapping[str, Any]) -> None:
        self.published += 1
        for subscription in self._by_topic.get(topic, ()):
            subscription.deliver(topic, payload)

    def subscribe(self, *topics: str, capacity: int = 1000) -> Subscription:
        subscription = Subscription(self, frozenset(topics), capacity)
        for topic in topics:
            self._by_topic[topic].add(subscription)
        return subscription

    def add_topics(self, subscription: Subscription, *topics: str) -> None:
        subscription.topics = subscription.topics | frozenset(topics)
        for topic in topics:
            self._by_topic[topic].add(subscription)

    def remove_topics(self, subscription: Subscription, *topics: str) -> None:
        subscription.topics = subscription.topics - frozenset(topics)
        for topic in topics:
            self._by_topic.get(topic, set()).discard(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        for topic in subscription.topics:
            self._by_topic.get(topic, set()).discard(subscription)

    def has_subscribers(self, topic: str) -> bool:
        """Whether publishing ``topic`` would reach anyone (lets hot paths skip the payload)."""
        return bool(self._by_topic.get(topic))

    def subscriber_count(self) -> int:
        return len({s for subs in self._by_topic.values() for s in subs})
