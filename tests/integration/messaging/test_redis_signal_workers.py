"""Acceptance: two worker processes, one SIGKILLed half-way; no signal lost, none doubled.

1,000 signals are queued before any worker starts. Two worker processes
(worker_process.py) consume them with an idempotent PostgreSQL handler: every
attempt is recorded, and the client_order_id is inserted into a UNIQUE table with
ON CONFLICT DO NOTHING. Worker A makes its 151st signal durable and then hangs
before returning (so it is never acknowledged); the test SIGKILLs it. Worker B
claims what A held (claim_idle_ms=500) and finishes. Every client_order_id ends
up in the table exactly once, and the only signal attempted twice is the one A
had made durable but not acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from trademk.domain.orders import OrderSide
from trademk.domain.signals import OrderRequest
from trademk.messaging.redis_signals import RedisSignalQueue

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REPO_ROOT = Path(__file__).resolve().parents[3]
GROUP = "execution"
SIGNALS = 1000
STALL_AFTER = 150


class Workers:
    """Starts worker processes and makes sure none outlives the test."""

    def __init__(self, redis_url: str, postgres_url: str, stream: str, table: str) -> None:
        self.common = [
            "--redis-url", redis_url,
            "--postgres-url", postgres_url,
            "--stream", stream,
            "--group", GROUP,
            "--table", table,
            "--claim-idle-ms", "500",
        ]  # fmt: skip
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, consumer: str, *extra: str) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.messaging.worker_process",
            *self.common,
            "--consumer",
            consumer,
            *extra,
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        self.processes.append(process)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line.strip() == b"ready", line
        return process

    async def close(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def final_status(process: asyncio.subprocess.Process) -> dict[str, object]:
    """SIGTERM a worker and return the status it prints on its way out."""
    process.terminate()
    assert process.stdout is not None
    output = await asyncio.wait_for(process.stdout.read(), 30)
    assert await process.wait() == 0
    last_json = [line for line in output.splitlines() if line.startswith(b"{")][-1]
    status: dict[str, object] = json.loads(last_json)
    return status


async def poll(query: str, conn: asyncpg.Connection, until: object, within: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (value := await conn.fetchval(query)) != until:
        if loop.time() > deadline:
            raise AssertionError(f"{query!r} gave {value!r}, waiting for {until!r}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def database(postgres_url: str, unique_name: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres_url)
    await conn.execute(
        f'CREATE TABLE "{unique_name}_orders" ('
        " client_order_id text NOT NULL UNIQUE, consumer text NOT NULL)"
    )
    await conn.execute(
        f'CREATE TABLE "{unique_name}_attempts" ('
        " id bigserial PRIMARY KEY, client_order_id text NOT NULL, consumer text NOT NULL)"
    )
    try:
        yield conn
    finally:
        await conn.execute(f'DROP TABLE "{unique_name}_orders", "{unique_name}_attempts"')
        await conn.close()


async def poll_unacknowledged_zero(client: aioredis.Redis, stream: str, within: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (await client.xpending(stream, GROUP))["pending"]:
        if loop.time() > deadline:
            raise AssertionError("signals still unacknowledged")
        await asyncio.sleep(0.02)


async def test_a_sigkilled_worker_loses_no_signal_and_only_its_unacked_one_runs_twice(
    redis_url: str,
    postgres_url: str,
    redis_client: aioredis.Redis,
    database: asyncpg.Connection,
    unique_name: str,
) -> None:
    stream = f"{unique_name}:signals"
    orders, attempts = f"{unique_name}_orders", f"{unique_name}_attempts"
    producer = RedisSignalQueue(redis_client, stream=stream, group=GROUP, consumer="producer")
    for n in range(SIGNALS):
        await producer.put(OrderRequest(f"sig-{n:04d}", "BTCUSDT", OrderSide.BUY, Decimal("1")))

    workers = Workers(redis_url, postgres_url, stream, unique_name)
    try:
        doomed = await workers.start("worker-a", "--stall-after", str(STALL_AFTER))
        survivor = await workers.start("worker-b")
        await poll(
            f"SELECT count(*) FROM \"{attempts}\" WHERE consumer = 'worker-a'",
            database,
            STALL_AFTER + 1,
        )
        held = await redis_client.xpending_range(stream, GROUP, "-", "+", 100, "worker-a")
        doomed.kill()
        await doomed.wait()

        await poll(f'SELECT count(*) FROM "{orders}"', database, SIGNALS)
        await poll_unacknowledged_zero(redis_client, stream)
        status = await final_status(survivor)
        client_order_ids = {
            entry_id: fields[b"client_order_id"].decode()
            for entry_id, fields in await redis_client.xrange(stream)
        }
    finally:
        await workers.close()
        await redis_client.delete(stream, f"{stream}:dead")

    stored = dict(await database.fetch(f'SELECT client_order_id, consumer FROM "{orders}"'))
    attempt_rows = await database.fetch(
        f'SELECT client_order_id, consumer FROM "{attempts}" ORDER BY id'
    )
    stalled = [row["client_order_id"] for row in attempt_rows if row["consumer"] == "worker-a"][-1]
    per_id = Counter(row["client_order_id"] for row in attempt_rows)
    redelivered = {cid: count for cid, count in per_id.items() if count > 1}

    assert sorted(stored) == [f"sig-{n:04d}" for n in range(SIGNALS)]
    assert redelivered == {stalled: 2}
    assert len(attempt_rows) - SIGNALS == len(redelivered)
    assert [r["consumer"] for r in attempt_rows if r["client_order_id"] == stalled] == [
        "worker-a",
        "worker-b",
    ]
    assert stored[stalled] == "worker-a"  # the survivor's retry was a no-op
    held_ids = {client_order_ids[entry["message_id"]] for entry in held}
    assert stalled in held_ids
    assert {stored[cid] for cid in held_ids - {stalled}} <= {"worker-b"}
    assert status["claimed"] >= len(held)
    assert (status["lost"], status["dead_lettered"], status["pending"]) == (0, 0, 0)
