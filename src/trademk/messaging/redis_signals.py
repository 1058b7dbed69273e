"""Signals on a Redis Stream with a consumer group: the multi-worker ``SignalQueue``.

Delivery is at-least-once:

- ``put`` appends the request's wire fields to the stream (``XADD``).
- ``consume`` reads new entries for its consumer (``XREADGROUP >``), awaits the
  handler and acknowledges (``XACK``) only after the handler returned, i.e. after
  the order is durable. The group is created at id 0, so signals put before the
  first worker started are consumed too.
- A handler that raises leaves the entry pending. Every ``claim_idle_ms / 2`` the
  consumer runs ``XAUTOCLAIM`` for entries idle at least ``claim_idle_ms``: its own
  failed entries (a retry) and those of workers that died. ``claim_idle_ms`` must
  therefore comfortably exceed ``batch`` times the slowest handler, or a live worker's
  entries get claimed (and handled twice) too.
- After ``max_deliveries`` attempts an entry goes to ``<stream>:dead`` with the
  error and is acknowledged; an entry that cannot be decoded goes there at once.
- Redis errors are retried with backoff forever; nothing is acknowledged that was
  not handled, so a dropped connection loses nothing.

Handlers must be idempotent by ``client_order_id`` (``OrderManager.submit`` is):
an entry whose handler finished but whose ``XACK`` was lost is handled again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademk.domain.errors import TransientError
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import Clock, LiveClock
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.engine.signal_queue import SignalHandler
from trademk.messaging import stream_upkeep
from trademk.messaging.codec import as_text, fields_as_text
from trademk.messaging.streams import default_consumer_name
from trademk.venues.reconnect import ExponentialBackoff

log = structlog.get_logger(__name__)

TRANSIENT_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
RawFields = Mapping[Any, Any]
Entry = tuple[str, RawFields]


@dataclass
class SignalQueueCounters:
    """What this queue instance did since it was built (``status()`` reports them).

    ``received``: signals put through this instance; ``executed``: handled and
    acknowledged; ``failed``: handler attempts that raised; ``claimed``: entries
    taken over by ``XAUTOCLAIM``; ``lost``: pending entries found deleted from the
    stream (trimmed by someone else); ``reconnects``: Redis errors recovered from.
    """

    received: int = 0
    executed: int = 0
    failed: int = 0
    claimed: int = 0
    dead_lettered: int = 0
    lost: int = 0
    trimmed: int = 0
    reconnects: int = 0


def _require_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _stream_entries(reply: Any) -> list[Entry]:
    """Entries of an ``XREADGROUP`` reply on one stream (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    per_stream = reply.values() if isinstance(reply, dict) else (item[1] for item in reply)
    return [(as_text(entry_id), fields) for entries in per_stream for entry_id, fields in entries]


class RedisSignalQueue:
    """A ``SignalQueue`` shared by several execution workers through a consumer group."""

    redelivers_failed = True
    """A handler that raises sees the signal again (after ``claim_idle_ms``)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str = "trademk:signals",
        group: str = "execution",
        consumer: str | None = None,
        *,
        claim_idle_ms: int = 10_000,
        block_ms: int = 1_000,
        batch: int = 16,
        max_deliveries: int = 5,
        maxlen: int = 100_000,
        forget_consumer_idle_ms: int = 600_000,
        clock: Clock | None = None,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        if not stream or not group:
            raise ValueError("a signal queue needs a stream name and a group name")
        if consumer is not None and not consumer:
            raise ValueError("a consumer name must not be empty")
        _require_positive(
            claim_idle_ms=claim_idle_ms,
            block_ms=block_ms,
            batch=batch,
            max_deliveries=max_deliveries,
            maxlen=maxlen,
            forget_consumer_idle_ms=forget_consumer_idle_ms,
        )
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer or default_consumer_name()
        self.dead_letter_stream = f"{stream}:dead"
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.batch = batch
        self.max_deliveries = max_deliveries
        self.maxlen = maxlen
        self.forget_consumer_idle_ms = forget_consumer_idle_ms
        self.clock = clock or LiveClock()
        self.backoff = backoff or ExponentialBackoff()
        self.counters = SignalQueueCounters()
        self.lifecycle = Lifecycle(f"signal-queue:{self.consumer}")
        self.connected = False
        self.last_error: str | None = None
        self._snapshot: dict[str, Any] = {
            "stream_length": None,
            "pending": None,
            "unacked": None,
            "undelivered": None,
            "consumers": None,
            "dead_letter_length": None,
        }
        self._group_ready = False
        self._next_sweep_ns = 0
        self._stop_requested = asyncio.Event()
        self._finished = asyncio.Event()
        self._consumer_task: asyncio.Task[Any] | None = None

    # ------------------------------------------------------------------ producing
    async def put(self, request: OrderRequest) -> None:
        """Append one signal; raises ``TransientError`` when Redis cannot be reached."""
        fields: dict[Any, Any] = {**request.to_wire(), "ts": str(self.clock.now_ns())}
        try:
            await self.redis.xadd(self.stream, fields)
        except TRANSIENT_REDIS_ERRORS as err:
            raise TransientError(
                f"could not queue signal {request.client_order_id!r} on {self.stream}: {err}"
            ) from err
        self.counters.received += 1

    # ------------------------------------------------------------------ consuming
    async def consume(self, handler: SignalHandler) -> None:
        """Hand signals to ``handler`` until ``stop()``; survives Redis outages."""
        if self._consumer_task is not None:
            raise RuntimeError(f"consumer {self.consumer} is already consuming")
        if self.lifecycle.state is ComponentState.STOPPED:
            raise RuntimeError(f"signal queue consumer {self.consumer} was stopped")
        self._consumer_task = asyncio.current_task()
        self._finished.clear()
        self.lifecycle.to(ComponentState.RUNNING)
        try:
            while not self._stop_requested.is_set():
                await self._step(handler)
        finally:
            self._consumer_task = None
            self._finished.set()

    async def stop(self) -> None:
        """Finish the handler in flight, then return; unhandled entries stay unacknowledged.

        An idle consumer notices within ``block_ms`` (its blocking read is not
        interrupted: cancelling a Redis command mid-reply would drop the connection).
        """
        self._stop_requested.set()
        consuming = self._consumer_task
        if consuming is not None and consuming is not asyncio.current_task():
            await self._finished.wait()
        if self.lifecycle.state is not ComponentState.STOPPED:
            self.lifecycle.to(ComponentState.STOPPED)

    async def _step(self, handler: SignalHandler) -> None:
        try:
            await self._ensure_group()
            if self.clock.monotonic_ns() >= self._next_sweep_ns:
                await self._sweep(handler)
                if self._stop_requested.is_set():
                    return
            entries = await self._read_new()
            self._mark_healthy()
            for entry_id, fields in entries:
                if self._stop_requested.is_set():
                    return
                await self._process(handler, entry_id, fields, deliveries=1)
        except ResponseError as err:
            if not stream_upkeep.is_missing_group(err):
                raise
            self._group_ready = False
            log.warning("signal stream or group vanished; recreating it", stream=self.stream)
        except TRANSIENT_REDIS_ERRORS as err:
            await self._pause_after_error(err)

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
        self._group_ready = True

    async def _read_new(self) -> list[Entry]:
        until_sweep_ms = (self._next_sweep_ns - self.clock.monotonic_ns()) // 1_000_000
        block = max(1, min(self.block_ms, until_sweep_ms))
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=self.batch, block=block
        )
        return _stream_entries(reply)

    async def _process(
        self, handler: SignalHandler, entry_id: str, raw: RawFields, deliveries: int
    ) -> None:
        """Decode, handle, acknowledge; or leave pending; or dead-letter."""
        try:
            request = OrderRequest.from_wire(fields_as_text(raw))
        except (KeyError, ValueError, ArithmeticError) as err:
            await self._dead_letter(entry_id, raw, deliveries, f"undecodable signal: {err!r}")
            return
        try:
            await handler(request)
        except Exception as err:
            self.counters.failed += 1
            log.warning(
                "signal handler failed",
                client_order_id=request.client_order_id,
                entry_id=entry_id,
                deliveries=deliveries,
                exc_info=True,
            )
            if deliveries >= self.max_deliveries:
                await self._dead_letter(entry_id, raw, deliveries, f"{type(err).__name__}: {err}")
            return
        await self.redis.xack(self.stream, self.group, entry_id)
        self.counters.executed += 1

    async def _dead_letter(
        self, entry_id: str, raw: RawFields, deliveries: int, error: str
    ) -> None:
        """Move an entry to the dead-letter stream and acknowledge it, atomically."""
        record = {
            **raw,
            "dead_id": entry_id,
            "dead_error": error,
            "dead_deliveries": str(deliveries),
            "dead_consumer": self.consumer,
            "dead_ts": str(self.clock.now_ns()),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter_stream, record, maxlen=self.maxlen, approximate=True)
            pipe.xack(self.stream, self.group, entry_id)
            await pipe.execute()
        self.counters.dead_lettered += 1
        log.error(
            "signal dead-lettered",
            entry_id=entry_id,
            dead_letter_stream=self.dead_letter_stream,
            deliveries=deliveries,
            error=error,
        )

    # ------------------------------------------------------------------- claiming
    async def _sweep(self, handler: SignalHandler) -> None:
        """Claim abandoned entries, trim acknowledged history, refresh status figures."""
        self._next_sweep_ns = self.clock.monotonic_ns() + self.claim_idle_ms * 500_000
        await self._claim_abandoned(handler)
        self.counters.trimmed += await stream_upkeep.trim_acknowledged(
            self.redis, self.stream, self.maxlen
        )
        await stream_upkeep.forget_departed_consumers(
            self.redis, self.stream, self.group, self.consumer, self.forget_consumer_idle_ms
        )
        await self.refresh_status()

    async def _claim_abandoned(self, handler: SignalHandler) -> None:
        cursor = "0-0"
        while not self._stop_requested.is_set():
            reply = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=cursor,
                count=self.batch,
            )
            cursor = as_text(reply[0])
            self._count_lost(reply[2] if len(reply) > 2 else [])
            entries = [(as_text(i), fields) for i, fields in reply[1] if fields is not None]
            if entries:
                await self._process_claimed(handler, entries)
            if cursor == "0-0":
                return

    def _count_lost(self, deleted_ids: list[Any]) -> None:
        if deleted_ids:
            self.counters.lost += len(deleted_ids)
            log.error(
                "pending signals were deleted from the stream before being handled",
                stream=self.stream,
                entry_ids=[as_text(i) for i in deleted_ids],
            )

    async def _process_claimed(self, handler: SignalHandler, entries: list[Entry]) -> None:
        self.counters.claimed += len(entries)
        deliveries = await self._delivery_counts([entry_id for entry_id, _ in entries])
        for entry_id, fields in entries:
            if self._stop_requested.is_set():
                return
            count = deliveries.get(entry_id)
            if count is None:
                continue  # acknowledged or claimed by another worker meanwhile
            if count > self.max_deliveries:
                error = f"delivered {count - 1} times without being acknowledged"
                await self._dead_letter(entry_id, fields, count - 1, error)
            else:
                await self._process(handler, entry_id, fields, count)

    async def _delivery_counts(self, entry_ids: list[str]) -> dict[str, int]:
        """How often each entry was delivered, counting the claim just made."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xpending_range(
                    self.stream,
                    self.group,
                    min=entry_id,
                    max=entry_id,
                    count=1,
                    consumername=self.consumer,
                )
            replies = await pipe.execute()
        return {
            as_text(reply[0]["message_id"]): int(reply[0]["times_delivered"])
            for reply in replies
            if reply
        }

    # --------------------------------------------------------------------- health
    def _mark_healthy(self) -> None:
        if not self.connected or self.lifecycle.state is ComponentState.DEGRADED:
            self.connected = True
            self.backoff.reset()
            self.lifecycle.to(ComponentState.RUNNING)

    async def _pause_after_error(self, err: Exception) -> None:
        self.counters.reconnects += 1
        self.connected = False
        self.last_error = f"{type(err).__name__}: {err}"
        self.lifecycle.to(ComponentState.DEGRADED, f"redis unreachable: {self.last_error}")
        delay = self.backoff.next_delay()
        log.warning("signal queue lost redis; retrying", error=self.last_error, retry_in=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), delay)

    async def refresh_status(self) -> dict[str, Any]:
        """Query Redis for the stream figures, then return ``status()``."""
        self._snapshot = await stream_upkeep.group_snapshot(
            self.redis, self.stream, self.group, self.dead_letter_stream
        )
        return self.status()

    def status(self) -> dict[str, Any]:
        """Counters plus the stream figures of the last sweep (``refresh_status`` for fresh)."""
        return {
            "backend": "redis",
            "stream": self.stream,
            "group": self.group,
            "consumer": self.consumer,
            "dead_letter_stream": self.dead_letter_stream,
            "state": str(self.lifecycle.state),
            "reason": self.lifecycle.reason,
            "connected": self.connected,
            "last_error": self.last_error,
            **self._snapshot,
            **asdict(self.counters),
        }
