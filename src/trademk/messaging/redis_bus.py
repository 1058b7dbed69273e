"""The ``MessageBus`` of a process in a multi-process deployment: local fan-out + Redis relay.

``publish`` stays synchronous and never waits: it delivers to the local
``InProcessBus`` at once and queues the encoded payload for a writer task that
appends it (pipelined, in batches) to the stream ``<prefix>:<topic>``. The queue
is bounded; while Redis is unreachable the oldest queued events are dropped and
counted.

A relay task reads (``XREAD``, no consumer group: every process sees every
event) the streams of the topics this process subscribes to, from the moment it
started watching them, and publishes events from *other* origins into the local
bus; its own events were delivered locally already.

Each entry carries the writer's instance id and a sequence number, so an entry
written twice (a pipeline retried after a connection drop) is delivered once.
Remote subscribers receive the JSON form of the payload: Decimals arrive as
their exact strings, tuples as lists.

Every topic is forwarded to Redis unless ``forward(topic)`` says otherwise (keep
chatty, process-local topics out of Redis with it); ``has_subscribers`` is True
for every forwarded topic, since a subscriber in another process cannot be seen
from here.

Topics are watched from the relay's next poll (within ``block_ms``) when first
subscribed after ``start()``; ``await watch(topic)`` (or ``topics=``) to be sure
of every event from now on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog

from trademk.engine.bus import InProcessBus, Subscription
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.messaging.codec import (
    PayloadDecodingError,
    as_text,
    decode_payload,
    encode_payload,
)
from trademk.messaging.redis_signals import TRANSIENT_REDIS_ERRORS
from trademk.messaging.streams import default_consumer_name
from trademk.venues.reconnect import ExponentialBackoff

log = structlog.get_logger(__name__)

_SEEN_WRITERS_LIMIT = 4096


@dataclass
class BusCounters:
    """What this bus did since it was built (``status()`` reports them)."""

    published: int = 0
    written: int = 0
    dropped: int = 0
    relayed: int = 0
    own_skipped: int = 0
    duplicates: int = 0
    malformed: int = 0
    reconnects: int = 0


@dataclass(frozen=True, slots=True)
class _Outgoing:
    topic: str
    sequence: int
    data: bytes


class RedisEventBus:
    """``MessageBus`` relaying events between processes through Redis Streams."""

    def __init__(
        self,
        redis: aioredis.Redis,
        local: InProcessBus | None = None,
        *,
        prefix: str = "trademk:events",
        origin: str | None = None,
        topics: Iterable[str] = (),
        forward: Callable[[str], bool] | None = None,
        maxlen: int = 10_000,
        buffer_capacity: int = 10_000,
        batch: int = 256,
        block_ms: int = 500,
        flush_timeout: float = 2.0,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        if not prefix:
            raise ValueError("a bus needs a stream key prefix")
        if origin is not None and not origin:
            raise ValueError("an origin must not be empty")
        for name, value in (
            ("maxlen", maxlen),
            ("buffer_capacity", buffer_capacity),
            ("batch", batch),
            ("block_ms", block_ms),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.redis = redis
        self.local = local if local is not None else InProcessBus()
        self.prefix = prefix
        self.origin = origin or default_consumer_name()
        self.forward = forward or _every_topic
        self.maxlen = maxlen
        self.batch = batch
        self.block_ms = block_ms
        self.flush_timeout = flush_timeout
        template = backoff or ExponentialBackoff()
        # The writer and the relay fail and recover separately: one backoff each.
        self._backoffs = {
            task: ExponentialBackoff(template.initial, template.maximum, template.factor)
            for task in ("write", "relay")
        }
        self.counters = BusCounters()
        self.lifecycle = Lifecycle(f"event-bus:{self.origin}")
        self.connected = False
        self.last_error: str | None = None
        self._instance = secrets.token_hex(8)
        self._sequence = 0
        self._outbox: collections.deque[_Outgoing] = collections.deque(maxlen=buffer_capacity)
        self._outbox_ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._in_flight: list[_Outgoing] = []
        self._positions: dict[str, str] = {}
        self._unresolved: set[str] = set()
        self._topics_changed = asyncio.Event()
        self._last_seen: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        for topic in topics:
            self._want(topic)

    # -------------------------------------------------------------- MessageBus API
    def publish(self, topic: str, payload: Mapping[str, Any]) -> None:
        """Deliver locally now and queue for other processes; raises on a non-JSON payload."""
        _check_topic(topic)
        if not self.forward(topic):
            self.local.publish(topic, payload)
            self.counters.published += 1
            return
        data = encode_payload(payload)
        self.local.publish(topic, payload)
        self.counters.published += 1
        self._sequence += 1
        if len(self._outbox) == self._outbox.maxlen:
            self.counters.dropped += 1
        self._outbox.append(_Outgoing(topic, self._sequence, data))
        self._outbox_ready.set()
        self._drained.clear()

    def subscribe(self, *topics: str, capacity: int = 1000) -> Subscription:
        """A local subscription; the topics are relayed from other processes as well."""
        for topic in topics:
            _check_topic(topic)
        subscription = self.local.subscribe(*topics, capacity=capacity)
        for topic in topics:
            self._want(topic)
        return subscription

    def has_subscribers(self, topic: str) -> bool:
        """True for every forwarded topic: a subscriber in another process cannot be seen here."""
        return self.forward(topic) or self.local.has_subscribers(topic)

    async def watch(self, *topics: str) -> None:
        """Relay these topics from other processes, every event from this moment on.

        While Redis is unreachable the topics stay wanted and the relay starts
        watching them once it reconnects (events in between cannot be seen).
        """
        for topic in topics:
            _check_topic(topic)
            self._want(topic)
        try:
            await self._resolve(*topics)
        except TRANSIENT_REDIS_ERRORS as err:
            log.warning("topics watched once Redis answers", topics=topics, error=str(err))

    async def _resolve(self, *topics: str) -> None:
        """Start reading each topic's stream after its newest entry (raises while Redis
        is unreachable)."""
        for topic in topics:
            key = self.stream_key(topic)
            if key not in self._positions:
                newest = await self._last_id(key)
                self._positions.setdefault(key, newest)
            self._unresolved.discard(topic)
        self._topics_changed.set()

    def stream_key(self, topic: str) -> str:
        return f"{self.prefix}:{topic}"

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start watching the topics subscribed so far, then start writer and relay."""
        if self._tasks:
            return
        self.lifecycle.to(ComponentState.RUNNING)
        try:
            await self._resolve(*sorted(self._unresolved))
        except TRANSIENT_REDIS_ERRORS as err:
            self._note_error("relay", err)  # the relay keeps trying
        self._tasks = [
            asyncio.create_task(self._write_forever(), name=f"bus-writer:{self.origin}"),
            asyncio.create_task(self._relay_forever(), name=f"bus-relay:{self.origin}"),
        ]

    async def stop(self) -> None:
        """Write what is queued (up to ``flush_timeout`` seconds), then stop both tasks."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flushed(), self.flush_timeout)
            await _cancel_and_wait(self._tasks)
            self._tasks = []
        unwritten = len(self._outbox) + len(self._in_flight)
        if unwritten:
            log.warning("event bus stopped with unwritten events", unwritten=unwritten)
        if self.lifecycle.state is not ComponentState.STOPPED:
            self.lifecycle.to(ComponentState.STOPPED)

    async def _flushed(self) -> None:
        await self._drained.wait()

    def status(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "origin": self.origin,
            "state": str(self.lifecycle.state),
            "reason": self.lifecycle.reason,
            "connected": self.connected,
            "last_error": self.last_error,
            "topics": sorted(key[len(self.prefix) + 1 :] for key in self._positions),
            "topics_not_yet_watched": sorted(self._unresolved),
            "buffered": len(self._outbox) + len(self._in_flight),
            "subscribers": self.local.subscriber_count(),
            **asdict(self.counters),
        }

    # --------------------------------------------------------------------- writer
    async def _write_forever(self) -> None:
        while True:
            if not self._in_flight:
                while not self._outbox:
                    self._outbox_ready.clear()
                    await self._outbox_ready.wait()
                count = min(self.batch, len(self._outbox))
                self._in_flight = [self._outbox.popleft() for _ in range(count)]
            try:
                await self._write(self._in_flight)
            except TRANSIENT_REDIS_ERRORS as err:
                await self._pause_after_error("write", err)
                continue
            self.counters.written += len(self._in_flight)
            self._in_flight = []
            if not self._outbox:
                self._drained.set()
            self._mark_healthy("write")

    async def _write(self, events: list[_Outgoing]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                fields: dict[Any, Any] = {
                    "o": self.origin,
                    "i": self._instance,
                    "s": str(event.sequence),
                    "p": event.data,
                }
                pipe.xadd(
                    self.stream_key(event.topic), fields, maxlen=self.maxlen, approximate=True
                )
            await pipe.execute()

    # ---------------------------------------------------------------------- relay
    def _want(self, topic: str) -> None:
        if self.stream_key(topic) not in self._positions:
            self._unresolved.add(topic)
            self._topics_changed.set()

    async def _last_id(self, key: str) -> str:
        newest = await self.redis.xrevrange(key, "+", "-", count=1)
        return as_text(newest[0][0]) if newest else "0-0"

    async def _relay_forever(self) -> None:
        while True:
            try:
                if self._unresolved:
                    await self._resolve(*sorted(self._unresolved))
                if not self._positions:
                    self._topics_changed.clear()
                    await self._topics_changed.wait()
                    continue
                reply = await self.redis.xread(
                    dict(self._positions),  # type: ignore[arg-type]
                    count=self.batch,
                    block=self.block_ms,
                )
            except TRANSIENT_REDIS_ERRORS as err:
                await self._pause_after_error("relay", err)
                continue
            self._mark_healthy("relay")
            per_stream = reply.items() if isinstance(reply, dict) else reply or []
            for key, entries in per_stream:
                self._relay_entries(as_text(key), entries)

    def _relay_entries(self, key: str, entries: Any) -> None:
        topic = key[len(self.prefix) + 1 :]
        for entry_id, fields in entries:
            self._positions[key] = as_text(entry_id)
            try:
                self._relay_one(key, topic, fields)
            except (KeyError, ValueError, PayloadDecodingError) as err:
                self.counters.malformed += 1
                log.warning("malformed bus entry skipped", stream=key, entry_id=entry_id, error=err)

    def _relay_one(self, key: str, topic: str, fields: Mapping[Any, Any]) -> None:
        text = {as_text(k): v for k, v in fields.items()}
        if as_text(text["o"]) == self.origin:
            self.counters.own_skipped += 1
            return
        writer = (key, as_text(text["i"]))
        sequence = int(text["s"])
        if sequence <= self._last_seen.get(writer, 0):
            self.counters.duplicates += 1
            return
        payload = decode_payload(text["p"])
        self._last_seen[writer] = sequence
        self._last_seen.move_to_end(writer)
        if len(self._last_seen) > _SEEN_WRITERS_LIMIT:
            self._last_seen.popitem(last=False)
        self.local.publish(topic, payload)
        self.counters.relayed += 1

    # --------------------------------------------------------------------- health
    def _mark_healthy(self, task: str) -> None:
        self._backoffs[task].reset()
        if not self.connected or self.lifecycle.state is ComponentState.DEGRADED:
            self.connected = True
            if self.lifecycle.state is not ComponentState.STOPPED:
                self.lifecycle.to(ComponentState.RUNNING)

    def _note_error(self, task: str, err: Exception) -> float:
        """Record a Redis failure; returns how long ``task`` should wait before retrying."""
        self.counters.reconnects += 1
        self.connected = False
        self.last_error = f"{task}: {type(err).__name__}: {err}"
        if self.lifecycle.state is not ComponentState.STOPPED:
            self.lifecycle.to(ComponentState.DEGRADED, f"redis unreachable: {self.last_error}")
        delay = self._backoffs[task].next_delay()
        log.warning("event bus lost redis; retrying", error=self.last_error, retry_in=delay)
        return delay

    async def _pause_after_error(self, task: str, err: Exception) -> None:
        await asyncio.sleep(self._note_error(task, err))


def _every_topic(_topic: str) -> bool:
    return True


def _check_topic(topic: str) -> None:
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"a topic must be a non-empty string, got {topic!r}")


async def _cancel_and_wait(tasks: list[asyncio.Task[None]], grace: float = 5.0) -> None:
    """Cancel ``tasks`` and wait for them, re-cancelling any that swallowed it.

    A cancellation that lands inside a Redis client call can be turned into a
    connection error the task's retry loop catches; without a bound, stop()
    would then wait for ever.
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=grace)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("event bus task ended with an error", error=str(task.exception()))
        if pending:
            log.warning(
                "event bus tasks ignored cancellation; cancelling again", tasks=len(pending)
            )
