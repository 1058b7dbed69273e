"""Two `trademk worker --role execution` processes on the real Redis and PostgreSQL.

1,000 signals go into the Redis stream; both workers execute them through risk,
the OMS and their paper venue, at prices an ingest worker relays to them. One
execution worker is killed half-way. Every signal becomes exactly one order,
every order is filled (one the killed worker claimed but never sent is taken
over by the survivor), and no order is filled twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from trademk.domain.orders import OrderSide
from trademk.domain.signals import OrderRequest
from trademk.messaging.redis_signals import RedisSignalQueue

pytestmark = pytest.mark.timeout(200)

TRADEMK = str(Path(sys.executable).parent / "trademk")
SIGNALS = 1_000
GENEROUS_LIMITS = {
    "max_orders_per_second": "100000",
    "max_orders_per_minute": "10000000",
    "max_open_orders": "100000",
    "max_open_orders_per_symbol": "100000",
    "max_daily_loss_usd": "1000000",
}


def _env(tmp_path: Path, database: str, redis_url: str, namespace: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": database,
            "TICKSTORE_URL": database,
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": namespace,
            "FEED": "sim",
            "SIM_TICKS_PER_SECOND": "50",
            "CRYPTO_SYMBOLS": "BTCUSDT",
            "STOCK_SYMBOLS": "AAPL",
            "DEFAULT_STRATEGIES": "false",
        }
    )
    return env


async def _count(conn: asyncpg.Connection, sql: str) -> int:
    return int(await conn.fetchval(sql))


async def _run_to_completion(
    conn: asyncpg.Connection, workers: list[subprocess.Popen[bytes]]
) -> None:
    """Kill the first execution worker a third of the way, then wait until every
    signal is an order and every order is filled."""
    while await _count(conn, "SELECT count(*) FROM orders") < SIGNALS // 3:
        assert all(w.poll() is None for w in workers), "a worker exited early"
        await asyncio.sleep(0.2)
    workers[0].send_signal(signal.SIGKILL)
    while await _count(conn, "SELECT count(*) FROM orders") < SIGNALS:
        await asyncio.sleep(0.2)
    # An order the killed worker claimed but never sent is taken over by the
    # survivor when its signal comes back (after claim_idle_ms).
    while await _count(conn, "SELECT count(*) FROM orders WHERE status <> 'filled'") > 0:
        await asyncio.sleep(0.2)


async def test_two_workers_execute_each_signal_exactly_once(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str
) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    env = _env(tmp_path, fresh_postgres_url, redis_url, namespace)
    migrated = subprocess.run([TRADEMK, "migrate"], env=env, cwd=tmp_path, capture_output=True)
    assert migrated.returncode == 0, migrated.stderr
    conn = await asyncpg.connect(fresh_postgres_url)
    for key, value in GENEROUS_LIMITS.items():
        await conn.execute(
            "UPDATE configs SET value = $1 WHERE key = $2 AND scope = 'risk'", f'"{value}"', key
        )
    redis = aioredis.from_url(redis_url)
    queue = RedisSignalQueue(redis, stream=f"{namespace}:signals")
    for i in range(SIGNALS):
        side = OrderSide.BUY if i % 2 == 0 else OrderSide.SELL
        await queue.put(OrderRequest(f"w-{i:04d}", "BTCUSDT", side, Decimal("0.001")))

    logs = [open(tmp_path / f"worker{n}.log", "wb") for n in (1, 2, 3)]  # noqa: SIM115
    workers = [
        subprocess.Popen(
            [TRADEMK, "worker", "--role", role],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for role, log in zip(("execution", "execution", "ingest"), logs, strict=True)
    ]
    try:
        try:
            async with asyncio.timeout(150):
                await _run_to_completion(conn, workers)
        except TimeoutError:
            statuses = await conn.fetch("SELECT status, count(*) FROM orders GROUP BY status")
            survivor_log = (tmp_path / "worker2.log").read_text()[-3000:]
            pytest.fail(f"orders by status: {dict(statuses)}; the survivor's log:\n{survivor_log}")
        orders = await _count(conn, "SELECT count(*) FROM orders")
        distinct = await _count(conn, "SELECT count(DISTINCT client_order_id) FROM orders")
        filled = await _count(conn, "SELECT count(*) FROM orders WHERE status = 'filled'")
        twice = await _count(
            conn,
            "SELECT count(*) FROM (SELECT client_order_id FROM fills "
            "GROUP BY client_order_id HAVING sum(qty) > 0.001) AS over",
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)
                worker.wait(timeout=30)
        for log in logs:
            log.close()
        await conn.close()
        await redis.aclose()
    assert orders == distinct == SIGNALS
    assert twice == 0
    assert filled == SIGNALS, (tmp_path / "worker2.log").read_text()[-3000:]
