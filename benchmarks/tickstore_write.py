"""Sustained TickStore write throughput per backend (ticks/s).

Writes N generated ticks (70% trades, 30% quotes over 20 symbols) in batches, each
with a batch id as the ingest pipeline does, and prints ticks per second.

    .venv/bin/python benchmarks/tickstore_write.py --ticks 1000000 --batch-size 10000

DuckDB writes to a temporary file; PostgreSQL to a unique table on TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/test), dropped afterwards; QuestDB runs
only when QUESTDB_URL is set (its tables are dropped afterwards too).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from urllib.parse import parse_qs, urlsplit

import asyncpg

from trademk.domain.market import Tick, TickKind
from trademk.engine.clock import LiveClock
from trademk.storage.ticks import open_tick_store

T0 = 1_699_920_000_000_000_000
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
QUESTDB_URL = os.environ.get("QUESTDB_URL")


def generate_ticks(count: int, symbols: int = 20) -> list[Tick]:
    """Deterministic ticks one microsecond apart, round-robin over the symbols."""
    names = [f"SYM{i:02d}USDT" for i in range(symbols)]
    ticks = []
    for i in range(count):
        ts = T0 + i * 1_000
        price = 100.0 + (i % 997) / 100
        if i % 10 < 7:
            ticks.append(
                Tick(
                    names[i % symbols],
                    "binance",
                    TickKind.TRADE,
                    ts,
                    price,
                    0.5,
                    seq=i,
                    received=ts,
                )
            )
        else:
            ticks.append(
                Tick(
                    names[i % symbols],
                    "binance",
                    TickKind.QUOTE,
                    ts,
                    price,
                    0.0,
                    bid=price - 0.01,
                    bid_size=1.0,
                    ask=price + 0.01,
                    ask_size=2.0,
                    seq=i,
                    received=ts,
                )
            )
    return ticks


async def measure(url: str, ticks: list[Tick], batch_size: int, **options: object) -> float:
    """Ticks per second writing ``ticks`` to the store at ``url``."""
    store = open_tick_store(url, **options)
    await store.start()
    clock = LiveClock()
    try:
        began = clock.monotonic_ns()
        for offset in range(0, len(ticks), batch_size):
            await store.write(ticks[offset : offset + batch_size], batch_id=f"bench-{offset}")
        elapsed = (clock.monotonic_ns() - began) / 1e9
    finally:
        await store.close()
    return len(ticks) / elapsed


async def drop_postgres_table(url: str, table: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_batches")
        await conn.execute(f"DROP SEQUENCE IF EXISTS {table}_ord_seq")
    finally:
        await conn.close()


async def drop_questdb_tables(url: str, table: str) -> None:
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    conn = await asyncpg.connect(
        host=parts.hostname,
        port=int(query.get("pg_port", 8812)),
        user=query.get("user", "admin"),
        password=query.get("password", "quest"),
        database=query.get("database", "qdb"),
    )
    try:
        for name in (table, f"{table}_batches"):
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--backends", default="duckdb,postgres,questdb")
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend; best is shown")
    args = parser.parse_args()
    backends = args.backends.split(",")
    ticks = generate_ticks(args.ticks)
    print(f"{args.ticks:,} ticks in batches of {args.batch_size:,}, best of {args.repeat}")

    size, repeat = args.batch_size, range(args.repeat)
    if "duckdb" in backends:
        report("duckdb", [await run_duckdb(ticks, size) for _ in repeat])
    if "postgres" in backends:
        report("postgresql", [await run_postgres(ticks, size) for _ in repeat])
    if "questdb" in backends and QUESTDB_URL:
        report("questdb", [await run_questdb(ticks, size) for _ in repeat])
    elif "questdb" in backends:
        print("questdb     skipped (set QUESTDB_URL)")


def report(backend: str, rates: list[float]) -> None:
    runs = ", ".join(f"{rate:,.0f}" for rate in rates)
    print(f"{backend:<11} {max(rates):>12,.0f} ticks/s   (runs: {runs})")


async def run_duckdb(ticks: list[Tick], batch_size: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        return await measure(f"duckdb:///{directory}/bench.duckdb", ticks, batch_size)


async def run_postgres(ticks: list[Tick], batch_size: int) -> float:
    table = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        return await measure(POSTGRES_URL, ticks, batch_size, table=table)
    finally:
        await drop_postgres_table(POSTGRES_URL, table)


async def run_questdb(ticks: list[Tick], batch_size: int) -> float:
    assert QUESTDB_URL is not None
    table = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        return await measure(QUESTDB_URL, ticks, batch_size, table=table)
    finally:
        await drop_questdb_tables(QUESTDB_URL, table)


if __name__ == "__main__":
    asyncio.run(main())
