"""Latency of one signal hop: in-process queue vs Redis Streams (and one bus event hop).

Signals are sent one at a time (the next only after the previous was acknowledged),
so each sample is the unloaded latency of one hop:

- in-process: ``InProcessSignalQueue.put`` → handler → done.
- redis: ``RedisSignalQueue.put`` (XADD) → XREADGROUP (the consumer is blocked on
  it) → handler → XACK; "to handler" stops when the handler runs, "to ack" when the
  XACK reply arrived.
- bus: ``RedisEventBus.publish`` on bus A → writer XADD → relay XREAD on bus B →
  B's local subscriber.

    .venv/bin/python benchmarks/redis_hop.py --signals 10000

Uses TEST_REDIS_URL (default redis://127.0.0.1:6379/0) with unique keys, deleted
afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import redis.asyncio as aioredis

from common import describe_machine, format_table, percentiles
from trademk.domain.orders import OrderSide
from trademk.domain.signals import OrderRequest
from trademk.engine.bus import InProcessBus
from trademk.engine.clock import LiveClock
from trademk.engine.signal_queue import InProcessSignalQueue
from trademk.messaging.redis_bus import RedisEventBus
from trademk.messaging.redis_signals import RedisSignalQueue

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOCK = LiveClock()
Samples = tuple[list[float], list[float]]


def request(n: int) -> OrderRequest:
    return OrderRequest(f"bench-{n}", "BTCUSDT", OrderSide.BUY, Decimal("0.001"))


async def until(done: Callable[[], bool]) -> None:
    """Yield to the loop until ``done()``: no timer granularity added to the sample."""
    while not done():  # noqa: ASYNC110 - a busy yield is the most precise wait here
        await asyncio.sleep(0)


async def time_hops(
    count: int,
    put: Callable[[OrderRequest], Awaitable[None]],
    handled: Callable[[], int],
    acked: Callable[[], int],
    handler_times: list[int],
) -> Samples:
    """Microseconds from put to handler and from put to acknowledgement, per signal."""
    to_handler: list[float] = []
    to_ack: list[float] = []
    for n in range(count):
        began = CLOCK.monotonic_ns()
        await put(request(n))
        await until(lambda n=n: handled() > n)
        await until(lambda n=n: acked() > n)
        finished = CLOCK.monotonic_ns()
        to_handler.append((handler_times[n] - began) / 1_000)
        to_ack.append((finished - began) / 1_000)
    return to_handler, to_ack


async def in_process(count: int) -> Samples:
    queue = InProcessSignalQueue()
    times: list[int] = []

    async def handler(_: OrderRequest) -> None:
        times.append(CLOCK.monotonic_ns())

    consumer = asyncio.create_task(queue.consume(handler))
    try:
        return await time_hops(count, queue.put, lambda: len(times), lambda: queue.executed, times)
    finally:
        consumer.cancel()


async def redis_queue(client: aioredis.Redis, count: int) -> Samples:
    stream = f"bench:{uuid.uuid4().hex[:10]}:signals"
    queue = RedisSignalQueue(client, stream=stream, consumer="bench", block_ms=1_000)
    times: list[int] = []

    async def handler(_: OrderRequest) -> None:
        times.append(CLOCK.monotonic_ns())

    consumer = asyncio.create_task(queue.consume(handler))
    try:
        return await time_hops(
            count, queue.put, lambda: len(times), lambda: queue.counters.executed, times
        )
    finally:
        await queue.stop()
        await consumer
        await client.delete(stream, queue.dead_letter_stream)


async def bus_hop(client: aioredis.Redis, count: int) -> list[float]:
    prefix = f"bench:{uuid.uuid4().hex[:10]}:events"
    a = RedisEventBus(client, InProcessBus(), prefix=prefix, origin="a")
    b = RedisEventBus(client, InProcessBus(), prefix=prefix, origin="b", topics=["fills"])
    await a.start()
    await b.start()
    subscription = b.subscribe("fills")
    samples: list[float] = []
    try:
        for n in range(count):
            began = CLOCK.monotonic_ns()
            a.publish("fills", {"n": n, "qty": "0.001"})
            await subscription.get()
            samples.append((CLOCK.monotonic_ns() - began) / 1_000)
    finally:
        await a.stop()
        await b.stop()
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    return samples


def row(name: str, label: str, samples: list[float]) -> list[object]:
    figures = percentiles(samples)
    return [name, label, figures["p50"], figures["p95"], figures["p99"], figures["max"]]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    print(describe_machine().describe())
    client = aioredis.from_url(REDIS_URL)
    try:
        await in_process(args.warmup)
        local_handler, local_ack = await in_process(args.signals)
        await redis_queue(client, args.warmup)
        redis_handler, redis_ack = await redis_queue(client, args.signals)
        await bus_hop(client, args.warmup)
        bus = await bus_hop(client, args.signals)
    finally:
        await client.aclose()
    rows = [
        row("in-process queue", "put -> handler", local_handler),
        row("in-process queue", "put -> done", local_ack),
        row("redis signal queue", "XADD -> handler", redis_handler),
        row("redis signal queue", "XADD -> XACK", redis_ack),
        row("redis event bus", "publish -> remote subscriber", bus),
    ]
    title = f"One hop, sequential, {args.signals:,} samples each (microseconds)"
    print(format_table(title, ["path", "span", "p50", "p95", "p99", "max"], rows))


if __name__ == "__main__":
    asyncio.run(main())
