"""Market data between processes: one process reads the venue, every other one relays.

The ingest process attaches a :class:`RedisTickPublisher` to its latest-price
cache; every other process (execution, strategies, API) runs a
:class:`RedisTickFeed` on the same stream instead of opening its own venue
connection. Only the ingest process writes the tick store, so a tick is stored
once however many processes need live prices.

Wire format: one stream entry per batch, fields ``w`` (the publisher's instance
id), ``s`` (the batch's sequence number for that instance) and ``t`` (the batch
as a msgpack array of ``Tick`` maps, by msgspec). Field names travel with every
tick, so a reader and a writer of different versions still understand each
other as long as new ``Tick`` fields have defaults.

The relay is the live view, not the record: the publisher drops its oldest
buffered ticks while Redis is unreachable, and the stream keeps only about the
newest ``retain_ticks`` ticks (the tick store keeps everything). A reader that
falls behind by more than that, or that was away while entries were trimmed,
continues from the oldest entry still there; it sees the hole in the writer's
batch sequence and counts a gap.

Redis memory: each ``XADD`` trims the stream to ``retain_ticks`` divided by the
size of the batch it adds, so the stream holds about ``retain_ticks`` ticks
(~170 bytes each) whether batches carry one tick at a quiet moment or
``max_batch`` in a flood; while batch sizes change, somewhat more.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from trademk.domain.market import Tick
from trademk.engine.clock import Clock, LiveClock
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.messaging.codec import as_text
from trademk.messaging.redis_signals import TRANSIENT_REDIS_ERRORS
from trademk.messaging.streams import parse_stream_id
from trademk.venues.reconnect import ExponentialBackoff, FeedCounters, feed_status

log = structlog.get_logger(__name__)

# Redis refusing a command (out of memory, a key of the wrong type) is retried like an
# outage: the relay must never take its process down.
_RETRYABLE: Final = (RedisError, *TRANSIENT_REDIS_ERRORS)
_WRITER_FIELD: Final = b"w"
_SEQUENCE_FIELD: Final = b"s"
_TICKS_FIELD: Final = b"t"
_SEEN_WRITERS_LIMIT: Final = 64
_STREAM_START: Final = "0-0"
# An XADD unanswered this long is on a dead connection, whatever the client's socket_timeout.
_WRITE_TIMEOUT_S: Final = 10.0


class RedisTickPublisher:
    """Relays every tick of this process to a Redis stream, in batches.

    ``on_tick`` is a ``LatestPriceCache`` listener: it only appends to a bounded
    buffer (the oldest ticks are dropped and counted when it is full) and never
    waits or raises. A writer task takes up to ``max_batch`` ticks at a time,
    waiting ``flush_interval`` for more when fewer are buffered, and appends them
    as one entry (``XADD`` with approximate ``MAXLEN`` trimming to about
    ``retain_ticks`` ticks, see the module docstring). Redis errors
    are retried with backoff for as long as the publisher runs.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str,
        *,
        max_batch: int = 1000,
        flush_interval: float = 0.005,
        retain_ticks: int = 200_000,
        buffer_capacity: int = 100_000,
        flush_timeout: float = 2.0,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        if not stream:
            raise ValueError("a tick publisher needs a stream name")
        for what, value in (
            ("max_batch", max_batch),
            ("retain_ticks", retain_ticks),
            ("buffer_capacity", buffer_capacity),
        ):
            if value <= 0:
                raise ValueError(f"{what} must be positive, got {value}")
        if flush_interval < 0 or flush_timeout < 0:
            raise ValueError("flush_interval and flush_timeout must not be negative")
        self.redis = redis
        self.stream_key = stream
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.retain_ticks = retain_ticks
        self.flush_timeout = flush_timeout
        self.lifecycle = Lifecycle(f"tick-publisher:{stream}")
        self.published = 0
        self.written = 0
        self.dropped = 0
        self.batches = 0
        self.reconnects = 0
        self.connected = False
        self.last_error: str | None = None
        self._backoff = backoff or ExponentialBackoff(initial=0.1, maximum=5.0)
        self._encoder = msgspec.msgpack.Encoder()
        self._instance = secrets.token_hex(8).encode()
        self._sequence = 0
        self._buffer: collections.deque[Tick] = collections.deque(maxlen=buffer_capacity)
        self._ready = asyncio.Event()
        self._batch_written = asyncio.Event()
        self._in_flight: list[Tick] = []
        self._in_flight_fields: dict[Any, Any] = {}
        self._dropped_before_batch = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ hot path
    def on_tick(self, tick: Tick) -> None:
        """Queue ``tick`` for the writer; drops the oldest queued tick when full."""
        buffer = self._buffer
        if len(buffer) == buffer.maxlen:
            self.dropped += 1
        buffer.append(tick)
        self.published += 1
        self._ready.set()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Start the writer; Redis being down is not an error (the writer keeps trying)."""
        if self._task is not None:
            return
        self._stopping = False
        self.lifecycle.to(ComponentState.RUNNING)
        self._task = asyncio.create_task(
            self._write_forever(), name=f"tick-writer:{self.stream_key}"
        )

    async def stop(self) -> None:
        """Write what is buffered for up to ``flush_timeout`` seconds, then stop the writer."""
        if self._task is not None:
            self._stopping = True
            self._ready.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_timeout):
                    while self.backlog:
                        self._batch_written.clear()
                        await self._batch_written.wait()
            await _cancel_and_wait(self._task)
            self._task = None
        if self.backlog:
            log.warning("tick publisher stopped with unwritten ticks", unwritten=self.backlog)
        if self.lifecycle.state is not ComponentState.STOPPED:
            self.lifecycle.to(ComponentState.STOPPED)

    @property
    def backlog(self) -> int:
        """Ticks accepted but not written yet (buffered or in the batch being written)."""
        return len(self._buffer) + len(self._in_flight)

    def status(self) -> dict[str, Any]:
        return {
            "stream": self.stream_key,
            "state": str(self.lifecycle.state),
            "reason": self.lifecycle.reason,
            "connected": self.connected,
            "last_error": self.last_error,
            "published": self.published,
            "written": self.written,
            "dropped": self.dropped,
            "batches": self.batches,
            "backlog": self.backlog,
            "reconnects": self.reconnects,
        }

    # -------------------------------------------------------------------- writer
    async def _write_forever(self) -> None:
        while True:
            if not self._in_flight:
                await self._take_batch()
            elif self.dropped > self._dropped_before_batch:
                # Newer ticks were dropped while this older batch waited: it goes too,
                # so what does get through stays in order.
                self.dropped += len(self._in_flight)
                self._in_flight = []
                continue
            try:
                async with asyncio.timeout(_WRITE_TIMEOUT_S):
                    await self.redis.xadd(
                        self.stream_key,
                        self._in_flight_fields,
                        maxlen=self._entries_to_keep(len(self._in_flight)),
                        approximate=True,
                    )
            except _RETRYABLE as err:  # a timed-out XADD may have landed: readers skip repeats
                await asyncio.sleep(self._note_error(err))
                continue
            self.written += len(self._in_flight)
            self.batches += 1
            self._in_flight = []
            self._batch_written.set()
            self._mark_healthy()

    def _entries_to_keep(self, batch_size: int) -> int:
        """How many entries of ``batch_size`` ticks make ``retain_ticks`` ticks."""
        return max(1, -(-self.retain_ticks // batch_size))

    async def _take_batch(self) -> None:
        while not self._buffer:
            self._ready.clear()
            await self._ready.wait()
        if len(self._buffer) < self.max_batch and not self._stopping and self.flush_interval:
            await asyncio.sleep(self.flush_interval)
        take = self._buffer.popleft
        batch = [take() for _ in range(min(self.max_batch, len(self._buffer)))]
        self._sequence += 1
        self._in_flight = batch
        self._dropped_before_batch = self.dropped
        self._in_flight_fields = {
            _WRITER_FIELD: self._instance,
            _SEQUENCE_FIELD: self._sequence,
            _TICKS_FIELD: self._encoder.encode(batch),
        }

    def _mark_healthy(self) -> None:
        if self.connected:
            return
        self.connected = True
        self._backoff.reset()
        if self.lifecycle.state is ComponentState.DEGRADED:
            self.lifecycle.to(ComponentState.RUNNING)

    def _note_error(self, err: Exception) -> float:
        self.reconnects += 1
        self.connected = False
        self.last_error = f"{type(err).__name__}: {err}"
        if self.lifecycle.state is not ComponentState.STOPPED:
            self.lifecycle.to(ComponentState.DEGRADED, f"redis unreachable: {self.last_error}")
        delay = self._backoff.next_delay()
        log.warning(
            "tick publisher lost redis; retrying",
            error=self.last_error,
            retry_in=round(delay, 3),
            backlog=self.backlog,
        )
        return delay


class RedisTickFeed:
    """``MarketDataFeed`` reading the ticks another process relays through Redis.

    Reads with ``XREAD`` (no consumer group: every process sees every tick) from
    the newest entry when ``stream()`` first connects, and yields the ticks of
    the subscribed symbols (nothing until something is subscribed, like the
    venue feeds). After a Redis error it reconnects with backoff and jitter and
    continues after the last entry it read; entries trimmed meanwhile are
    skipped (counted in ``gaps``), and a stream that Redis lost and that was
    written again is read from its start. A read that outlasts ``block_ms`` by
    ``read_grace`` seconds counts as a dead connection.

    The client must return bytes (no ``decode_responses``), and ``block_ms``
    must stay below its ``socket_timeout`` (redis-py's default is 5 s).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str,
        *,
        name: str = "relay",
        block_ms: int = 1000,
        count: int = 100,
        max_queued_reads: int = 16,
        read_grace: float = 5.0,
        clock: Clock | None = None,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        if not stream:
            raise ValueError("a relay feed needs a stream name")
        if block_ms <= 0 or count <= 0 or max_queued_reads <= 0 or read_grace <= 0:
            raise ValueError("block_ms, count, max_queued_reads and read_grace must be positive")
        connection = redis.connection_pool.connection_kwargs
        if connection.get("decode_responses"):
            raise ValueError("a relay feed needs a Redis client without decode_responses")
        socket_timeout = connection.get("socket_timeout")
        if socket_timeout is not None and block_ms >= socket_timeout * 1000:
            raise ValueError(
                f"block_ms={block_ms} must be below the socket_timeout ({socket_timeout} s)"
            )
        self.name = name
        self.redis = redis
        self.stream_key = stream
        self.block_ms = block_ms
        self.count = count
        # A read that outlasts its BLOCK by this much is a dead connection.
        self._read_timeout = block_ms / 1000 + read_grace
        self._clock = clock or LiveClock()
        self._backoff = backoff or ExponentialBackoff(initial=0.1, maximum=5.0)
        self._decoder = msgspec.msgpack.Decoder(list[Tick])
        self._symbols: set[str] = set()
        self._lifecycle = Lifecycle(name)
        self._counters = FeedCounters(
            extra={"stream": stream, "position": None, "received": 0, "gaps": 0}
        )
        self._connected = False
        self._position: str | None = None
        self._resync = False
        self._seen: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        # Batches of ticks for stream(); None ends it.
        self._queue: asyncio.Queue[list[Tick] | None] = asyncio.Queue(maxsize=max_queued_reads)
        self._reader: asyncio.Task[None] | None = None
        self._streaming = False
        self._closed = False

    # -- MarketDataFeed ---------------------------------------------------------
    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Add symbols to those yielded (duplicates are ignored)."""
        if isinstance(symbols, str):
            raise TypeError("subscribe() takes a sequence of symbols, not one string")
        self._symbols.update(symbols)

    def stream(self) -> AsyncIterator[Tick]:
        """Relayed ticks of the subscribed symbols until ``close()``; one stream per feed."""
        if self._streaming:
            raise RuntimeError(f"{self.name}: stream() is already running")
        self._streaming = True
        return self._iterate()

    def status(self) -> dict[str, Any]:
        self._counters.extra["position"] = self._position
        return feed_status(
            self.name, self._lifecycle, self._counters, self._connected, sorted(self._symbols)
        )

    async def close(self) -> None:
        """Stop reading and end ``stream()``; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            await _cancel_and_wait(self._reader)
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except asyncio.QueueFull:
                self._queue.get_nowait()
        self._connected = False
        self._lifecycle.to(ComponentState.STOPPED, "closed")

    # -- consumer side ----------------------------------------------------------
    async def _iterate(self) -> AsyncIterator[Tick]:
        try:
            if self._reader is None and not self._closed:
                self._reader = asyncio.create_task(self._read_forever(), name=f"relay:{self.name}")
            while not self._closed:
                batch = await self._queue.get()
                if batch is None:
                    return
                for tick in batch:
                    if self._closed:
                        return
                    yield tick
        finally:
            self._streaming = False

    # -- reader -----------------------------------------------------------------
    async def _read_forever(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._read_timeout):
                    position = self._position
                    if position is None or self._resync:
                        position = await self._find_position()
                        self._mark_healthy()
                    reply = await self.redis.xread(
                        {self.stream_key: position}, count=self.count, block=self.block_ms
                    )
            except _RETRYABLE as err:  # TimeoutError (a silent connection) is an OSError
                await asyncio.sleep(self._note_error(err))
                continue
            self._mark_healthy()
            if reply:
                await self._deliver(reply)

    async def _find_position(self) -> str:
        """Where to read from: the newest entry ever added (``$``) at the first connection;
        after an outage the last entry read, unless the stream Redis holds now is a new one.
        """
        try:
            info = await self.redis.xinfo_stream(self.stream_key)
        except ResponseError as err:
            if "no such key" not in str(err):
                raise
            info = None
        if self._position is None:
            self._position = _STREAM_START if info is None else as_text(info["last-generated-id"])
        elif info is None:  # the stream is gone: whatever is written next is new
            self._position = _STREAM_START
        elif parse_stream_id(info["last-generated-id"]) < parse_stream_id(self._position):
            log.warning(
                "tick stream was recreated; reading it from the start", stream=self.stream_key
            )
            self._counters.extra["gaps"] += 1
            self._position = _STREAM_START
        self._resync = False
        return self._position

    async def _deliver(self, reply: Any) -> None:
        per_stream = reply.values() if isinstance(reply, dict) else (item[1] for item in reply)
        wanted: list[Tick] = []
        for entries in per_stream:
            for entry_id, fields in entries:
                self._position = as_text(entry_id)
                self._counters.messages += 1
                ticks = self._decode(entry_id, fields)
                if ticks:
                    symbols = self._symbols
                    wanted.extend(tick for tick in ticks if tick.symbol in symbols)
        self._counters.last_message_ns = self._clock.now_ns()
        if wanted:
            self._counters.ticks += len(wanted)
            await self._queue.put(wanted)

    def _decode(self, entry_id: Any, fields: Any) -> list[Tick] | None:
        """The entry's ticks; None for a duplicate batch or a malformed entry (counted)."""
        try:
            writer = bytes(fields[_WRITER_FIELD])
            sequence = int(fields[_SEQUENCE_FIELD])
            last = self._seen.get(writer)
            if last is not None and sequence <= last:
                self._counters.duplicates += 1
                return None
            ticks = self._decoder.decode(fields[_TICKS_FIELD])
        except (KeyError, ValueError, TypeError, msgspec.DecodeError) as err:
            self._counters.parse_errors += 1
            self._counters.last_error = f"malformed entry {as_text(entry_id)}: {err}"
            log.warning(
                "malformed tick relay entry skipped", stream=self.stream_key, error=str(err)
            )
            return None
        if last is not None and sequence > last + 1:
            self._note_gap(sequence - last - 1)
        self._seen[writer] = sequence
        self._seen.move_to_end(writer)
        if len(self._seen) > _SEEN_WRITERS_LIMIT:
            self._seen.popitem(last=False)
        self._counters.extra["received"] += len(ticks)
        return ticks

    def _note_gap(self, missing: int) -> None:
        self._counters.extra["gaps"] += 1
        log.warning(
            "tick relay missed batches (trimmed from the stream, or dropped by the publisher)",
            stream=self.stream_key,
            missing_batches=missing,
        )

    def _mark_healthy(self) -> None:
        if self._connected:
            return
        self._connected = True
        self._backoff.reset()
        if self._lifecycle.state is not ComponentState.STOPPED:
            self._lifecycle.to(ComponentState.RUNNING)

    def _note_error(self, err: Exception) -> float:
        self._counters.reconnects += 1
        self._counters.last_error = f"{type(err).__name__}: {err}"
        self._connected = False
        self._resync = self._position is not None
        if self._lifecycle.state is not ComponentState.STOPPED:
            reason = f"redis unreachable: {self._counters.last_error}"
            if self._lifecycle.state is ComponentState.READY:
                self._lifecycle.to(ComponentState.RUNNING)
            self._lifecycle.to(ComponentState.DEGRADED, reason)
        delay = self._backoff.next_delay()
        log.warning(
            "tick relay lost redis; reconnecting",
            stream=self.stream_key,
            error=self._counters.last_error,
            retry_in=round(delay, 3),
        )
        return delay


async def _cancel_and_wait(task: asyncio.Task[None], grace: float = 5.0) -> None:
    """Cancel ``task`` and wait for it, cancelling again if a Redis call swallowed it."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=grace)
    if not task.cancelled() and task.exception() is not None:
        log.warning("tick relay task ended with an error", error=str(task.exception()))
