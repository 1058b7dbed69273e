"""Ticks per second through the tick relay: RedisTickPublisher → Redis stream → RedisTickFeed.

Two layouts, each with its own Redis clients:

- two processes: the publisher runs in a child process (as the ingest worker
  does) and the feed in this one (as an execution worker does);
- one process: publisher and feed share one event loop and one core.

The publisher is handed ticks as a live feed hands them over, in bursts of
``--burst`` (waiting only while its buffer is more than half full, so nothing is
dropped); the rate is ticks divided by the time from the first ``on_tick`` to
the feed yielding the last tick. Every tick carries its number in ``seq``; the
feed side checks they all arrive, in order.

    .venv/bin/python benchmarks/tick_relay.py --ticks 300000

Uses TEST_REDIS_URL (default redis://127.0.0.1:6379/0) with a unique stream,
deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import redis.asyncio as aioredis

from common import SYMBOL_PRICES, describe_machine, format_table, positive
from trademk.domain.market import Tick, TickKind
from trademk.engine.clock import LiveClock
from trademk.messaging.redis_ticks import RedisTickFeed, RedisTickPublisher

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOCK = LiveClock()
T0_NS = 1_795_478_400_000_000_000  # 2026-11-24 00:00 UTC


def make_ticks(count: int) -> list[Tick]:
    """Alternating Binance-like trades and quotes over 20 symbols; ``seq`` numbers them."""
    symbols = list(SYMBOL_PRICES.items())
    ticks = []
    for n in range(count):
        symbol, price = symbols[n % len(symbols)]
        price *= 1 + (n % 97) / 100_000
        ts = T0_NS + n * 1_000
        if n % 2:
            ticks.append(Tick(symbol, "BINANCE", TickKind.TRADE, ts, price, 0.012, seq=n))
            continue
        spread = price / 20_000
        quote = Tick(
            symbol, "BINANCE", TickKind.QUOTE, ts, price,
            bid=price - spread, bid_size=1.5, ask=price + spread, ask_size=2.25,
            seq=n, received=ts + 350_000,
        )  # fmt: skip
        ticks.append(quote)
    return ticks


async def publish(stream: str, ticks: list[Tick], burst: int) -> tuple[int, dict[str, Any]]:
    """Hand ``ticks`` to a publisher; returns (monotonic ns at the first tick, final status)."""
    client = aioredis.from_url(REDIS_URL)
    publisher = RedisTickPublisher(client, stream, retain_ticks=len(ticks))
    await publisher.start()
    high_water = 50_000
    began = CLOCK.monotonic_ns()
    try:
        for start in range(0, len(ticks), burst):
            for tick in ticks[start : start + burst]:
                publisher.on_tick(tick)
            await asyncio.sleep(0)
            while publisher.backlog > high_water:  # noqa: ASYNC110 - a live feed would wait too
                await asyncio.sleep(0.0005)
        await publisher.stop()
    finally:
        await client.aclose()
    return began, publisher.status()


def publisher_process(stream: str, count: int, burst: int, results: Connection) -> None:
    ticks = make_ticks(count)
    results.send("ready")
    results.recv()  # go
    results.send(asyncio.run(publish(stream, ticks, burst)))


@dataclass
class Received:
    ticks: int = 0
    out_of_order: int = 0
    finished_ns: int = 0


async def consume(feed: RedisTickFeed, last_seq: int, received: Received) -> None:
    expected = 0
    async for tick in feed.stream():
        received.ticks += 1
        if tick.seq != expected:
            received.out_of_order += 1
        expected = (tick.seq or 0) + 1
        if tick.seq == last_seq:
            received.finished_ns = CLOCK.monotonic_ns()
            return


async def open_feed(client: aioredis.Redis, stream: str) -> RedisTickFeed:
    feed = RedisTickFeed(client, stream)
    await feed.subscribe(list(SYMBOL_PRICES))
    return feed


async def wait_connected(feed: RedisTickFeed) -> None:
    while not feed.status()["connected"]:  # noqa: ASYNC110 - polling the public status
        await asyncio.sleep(0.005)


async def run_two_processes(count: int, burst: int) -> list[Any]:
    stream = f"bench:{uuid.uuid4().hex[:12]}:ticks"
    client = aioredis.from_url(REDIS_URL)
    parent_end, child_end = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=publisher_process, args=(stream, count, burst, child_end)
    )
    child.start()
    try:
        feed = await open_feed(client, stream)
        received = Received()
        consumer = asyncio.create_task(consume(feed, count - 1, received))
        await wait_connected(feed)
        await asyncio.to_thread(parent_end.recv)  # the child has built its ticks
        parent_end.send("go")
        await consumer
        began, status = await asyncio.to_thread(parent_end.recv)
        await feed.close()
    finally:
        child.join(30)
        await client.delete(stream)
        await client.aclose()
    return row("two processes", count, began, received, status)


async def run_one_process(count: int, burst: int) -> list[Any]:
    stream = f"bench:{uuid.uuid4().hex[:12]}:ticks"
    client = aioredis.from_url(REDIS_URL)
    ticks = make_ticks(count)
    try:
        feed = await open_feed(client, stream)
        received = Received()
        consumer = asyncio.create_task(consume(feed, count - 1, received))
        await wait_connected(feed)
        began, status = await publish(stream, ticks, burst)
        await consumer
        await feed.close()
    finally:
        await client.delete(stream)
        await client.aclose()
    return row("one process", count, began, received, status)


def row(
    layout: str, count: int, began: int, received: Received, status: dict[str, Any]
) -> list[Any]:
    seconds = (received.finished_ns - began) / 1e9
    complete = received.ticks == count and received.out_of_order == 0
    return [
        layout,
        count,
        round(seconds, 3),
        round(count / seconds),
        status["batches"],
        round(count / status["batches"]),
        status["dropped"],
        "yes" if complete else f"no ({received.ticks:,} received)",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=positive(int), default=300_000)
    parser.add_argument("--burst", type=positive(int), default=500)
    args = parser.parse_args()
    print(describe_machine().describe())
    rows = [
        await run_two_processes(args.ticks, args.burst),
        await run_one_process(args.ticks, args.burst),
    ]
    headers = [
        "layout", "ticks", "seconds", "ticks/s", "batches", "ticks/batch", "dropped",
        "complete, in order",
    ]  # fmt: skip
    title = f"Tick relay, publisher -> Redis -> feed, bursts of {args.burst:,}"
    print(format_table(title, headers, rows))


if __name__ == "__main__":
    asyncio.run(main())
