"""An execution worker process for the multi-process acceptance test.

Consumes signals from a ``RedisSignalQueue`` with an idempotent handler standing
in for the OMS: every attempt is recorded in ``<table>_attempts``, then the
``client_order_id`` is inserted into ``<table>_orders`` (UNIQUE) with
``ON CONFLICT DO NOTHING``. With ``--stall-after N`` the worker completes its
(N+1)-th signal in the database and then hangs before returning, so the signal
is durable but never acknowledged (the test then SIGKILLs it).

Prints ``ready`` once consuming and, after SIGTERM, its final ``status()`` as JSON.

    python -m tests.integration.messaging.worker_process --redis-url URL --stream S \\
        --group G --consumer C --postgres-url URL --table T [--claim-idle-ms 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import asyncpg
import redis.asyncio as aioredis

from trademk.domain.signals import OrderRequest
from trademk.messaging.redis_signals import RedisSignalQueue
from trademk.venues.reconnect import ExponentialBackoff


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--claim-idle-ms", type=int, default=500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--handler-delay", type=float, default=0.0)
    parser.add_argument("--stall-after", type=int, default=None)
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    redis = aioredis.from_url(args.redis_url)
    # Only this worker process gets killed, never the server: commits need not wait for fsync.
    pool = await asyncpg.create_pool(
        args.postgres_url,
        min_size=1,
        max_size=2,
        server_settings={"synchronous_commit": "off"},
    )
    queue = RedisSignalQueue(
        redis,
        stream=args.stream,
        group=args.group,
        consumer=args.consumer,
        claim_idle_ms=args.claim_idle_ms,
        block_ms=100,
        batch=args.batch,
        backoff=ExponentialBackoff(0.05, 0.5),
    )
    handled = 0

    async def handle(request: OrderRequest) -> None:
        nonlocal handled
        if args.handler_delay:
            await asyncio.sleep(args.handler_delay)
        async with pool.acquire() as conn:
            await conn.execute(
                f'INSERT INTO "{args.table}_attempts" (client_order_id, consumer) VALUES ($1, $2)',
                request.client_order_id,
                args.consumer,
            )
            await conn.execute(
                f'INSERT INTO "{args.table}_orders" (client_order_id, consumer) VALUES ($1, $2) '
                "ON CONFLICT (client_order_id) DO NOTHING",
                request.client_order_id,
                args.consumer,
            )
        handled += 1
        if args.stall_after is not None and handled > args.stall_after:
            await asyncio.Event().wait()  # durable but never acknowledged

    stopping: set[asyncio.Task[None]] = set()
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: stopping.add(asyncio.ensure_future(queue.stop()))
    )
    print("ready", flush=True)
    try:
        await queue.consume(handle)
        if stopping:
            await asyncio.wait(stopping)
        print(json.dumps(await queue.refresh_status()), flush=True)
    finally:
        await pool.close()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
