"""Tick-to-position latency through the real trading chain.

tick in → strategy decision → risk check → paper venue fill → OMS applies the
fill → position updated. In-process the chain is plain calls (the OMS applies
the paper venue's answer inside ``submit``); journaling to SQLite happens
write-behind on the same event loop, as in production, and gets the loop
between ticks.

    .venv/bin/python benchmarks/latency.py --orders 20000
    .venv/bin/python benchmarks/latency.py --orders 5000 --json out.json --gc-freeze

With ``--redis`` the signal also travels through a Redis Stream consumer group
(XADD → XREADGROUP → handler → XACK) before the OMS sees it. ``--gc-freeze``
moves everything allocated at start-up out of the garbage collector's reach
(``gc.freeze()``), as a runtime could after wiring; ``--json`` also writes the
figures to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from trademk.domain.calendar import NyseCalendar
from trademk.domain.market import AssetClass, Tick, TickKind
from trademk.domain.order_events import OrderFilled
from trademk.domain.orders import Order, OrderSide
from trademk.domain.portfolio import Portfolio
from trademk.domain.risk import RiskLimits
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import LiveClock, utc_now
from trademk.engine.journal_writer import JournalWriter
from trademk.engine.oms import OrderManager
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.risk_engine import RiskEngine
from trademk.storage import database, migrate
from trademk.storage.trading_repository import TradingRepository
from trademk.venues.paper import BpsFee, PaperVenue

sys.path.insert(0, str(Path(__file__).parent))
from common import describe_machine, json_ready, percentiles

SYMBOL = "BTCUSDT"
GENEROUS = RiskLimits.from_mapping(
    {
        "max_order_notional_usd": "1000000000",
        "max_position_size_usd": "1000000000",
        "max_open_orders": "1000000",
        "max_daily_loss_usd": "1000000000",
        "max_orders_per_second": "1000000",
        "max_orders_per_minute": "100000000",
    }
)


async def build_chain(data_dir: Path) -> tuple[LatestPriceCache, OrderManager, JournalWriter]:
    clock = LiveClock()
    engine = database.create_engine(f"sqlite+aiosqlite:///{data_dir / 'bench.db'}")
    await migrate.upgrade(engine)
    prices = LatestPriceCache()
    venue = PaperVenue(prices, clock, starting_cash=Decimal("1e12"), fee_model=BpsFee(Decimal(1)))
    await venue.start()
    portfolio = Portfolio(Decimal("1e12"))
    journal = JournalWriter(TradingRepository(database.session_factory(engine)))
    journal.start()
    holder: list[OrderManager] = []
    risk = RiskEngine(
        limits=GENEROUS,
        prices=prices,
        portfolio=portfolio,
        clock=clock,
        calendar=NyseCalendar(utc_now(clock).date()),
        asset_classes={SYMBOL: AssetClass.CRYPTO},
        open_orders=lambda: holder[0].open_orders(),
    )
    oms = OrderManager(venue, risk, portfolio, journal, clock, {SYMBOL: AssetClass.CRYPTO})
    holder.append(oms)
    await oms.start()
    return prices, oms, journal


def quote(i: int, now: int) -> Tick:
    mid = 65_000.0 + (i % 100)
    return Tick(SYMBOL, "BENCH", TickKind.QUOTE, now, mid, 0.0, mid - 0.5, 10.0, mid + 0.5, 10.0)


async def measure_in_process(orders: int, warmup: int) -> list[int]:
    with tempfile.TemporaryDirectory() as tmp:
        prices, oms, journal = await build_chain(Path(tmp))
        filled = asyncio.Event()
        stamp: list[int] = [0]

        def on_fill(_order: Order, _event: OrderFilled) -> None:
            stamp[0] = time.perf_counter_ns()
            filled.set()

        oms.on_fill(on_fill)
        latencies: list[int] = []
        run = uuid.uuid4().hex[:12]
        for i in range(orders + warmup):
            filled.clear()
            start = time.perf_counter_ns()
            prices.update(quote(i, time.time_ns()))
            side = OrderSide.BUY if i % 2 == 0 else OrderSide.SELL
            # Deterministic ids, as the StrategyRunner gives them (no uuid4 per order).
            await oms.submit(OrderRequest(f"b-{run}-{i}", SYMBOL, side, Decimal("0.001")))
            await filled.wait()
            if i >= warmup:
                latencies.append(stamp[0] - start)
            # The chain may finish without yielding; give the loop (the write-behind
            # journal) its turn between ticks, as a live feed's network waits would.
            await asyncio.sleep(0)
        await journal.flush()
        await oms.stop()
        await journal.stop()
        return latencies


async def measure_through_redis(orders: int, warmup: int, redis_url: str) -> list[int]:
    """The same chain with the signal travelling XADD → XREADGROUP → handler → XACK."""
    import redis.asyncio as aioredis

    from trademk.messaging.redis_signals import RedisSignalQueue

    client = aioredis.from_url(redis_url)
    stream = f"bench:{uuid.uuid4().hex}"
    queue = RedisSignalQueue(client, stream=stream, block_ms=50)
    with tempfile.TemporaryDirectory() as tmp:
        prices, oms, journal = await build_chain(Path(tmp))
        filled = asyncio.Event()
        stamp: list[int] = [0]

        def on_fill(_order: Order, _event: OrderFilled) -> None:
            stamp[0] = time.perf_counter_ns()
            filled.set()

        async def execute(request: OrderRequest) -> None:
            await oms.submit(request)

        oms.on_fill(on_fill)
        consumer = asyncio.create_task(queue.consume(execute))
        latencies: list[int] = []
        run = uuid.uuid4().hex[:12]
        try:
            for i in range(orders + warmup):
                filled.clear()
                start = time.perf_counter_ns()
                prices.update(quote(i, time.time_ns()))
                side = OrderSide.BUY if i % 2 == 0 else OrderSide.SELL
                await queue.put(OrderRequest(f"r-{run}-{i}", SYMBOL, side, Decimal("0.001")))
                await filled.wait()
                if i >= warmup:
                    latencies.append(stamp[0] - start)
        finally:
            await queue.stop()
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            await client.delete(stream, f"{stream}:dead")
            await client.aclose()
            await oms.stop()
            await journal.stop()
        return latencies


def report(title: str, latencies: list[int]) -> dict[str, float | None]:
    """Print one result line; returns its percentiles in microseconds."""
    values = percentiles([value / 1000 for value in latencies], (50, 90, 99))
    figures = " ".join(f"{k}={v:.1f}µs" for k, v in values.items() if v is not None)
    print(f"{title}: n={len(latencies)} {figures}")
    return values


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--redis", help="also measure through a Redis Stream at this URL")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after start-up")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    machine = describe_machine()
    print(machine.describe())
    if args.gc_freeze:
        gc.freeze()  # the chain itself is built per run; this freezes the imports' heap
    results: dict[str, object] = {"machine": machine.as_dict(), "gc_freeze": args.gc_freeze}
    latencies = await measure_in_process(args.orders, args.warmup)
    results["in_process_us"] = report("in-process tick → fill → position", latencies)
    if args.redis:
        latencies = await measure_through_redis(args.orders, args.warmup, args.redis)
        results["redis_us"] = report("through Redis tick → fill → position", latencies)
    if args.json:
        args.json.write_text(json.dumps(json_ready(results), indent=2) + "\n")
    if args.gc_freeze:
        gc.unfreeze()  # let extension objects be finalised at exit


if __name__ == "__main__":
    asyncio.run(main())
