"""Acceptance: a PostgreSQL outage during ingestion loses no tick and stores none twice.

The pipeline writes to the real server through a TCP proxy; the proxy is cut
mid-ingestion long enough for writes to fail and batches to spill to disk, then
restored. Afterwards the table, counted over a direct connection, holds every
tick exactly once, in the order it was sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.fakes.tcp_proxy import TcpProxy
from tests.unit.ingest.helpers import eventually
from trademk.domain.market import Tick, TickKind
from trademk.engine.clock import LiveClock
from trademk.ingest.pipeline import IngestPipeline
from trademk.storage.ticks.postgres_store import PostgresTickStore
from trademk.venues.reconnect import ExponentialBackoff

pytestmark = pytest.mark.postgres

START_NS = 1_750_000_000 * 1_000_000_000


def via_proxy(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Producer:
    """Sends numbered ticks in small chunks, as a feed would."""

    def __init__(self, pipeline: IngestPipeline, clock: LiveClock) -> None:
        self.pipeline = pipeline
        self.clock = clock
        self.sent = 0

    async def send(self, count: int, chunk: int = 100) -> None:
        for _ in range(0, count, chunk):
            now = self.clock.now_ns()
            ticks = [
                Tick(
                    symbol="BTCUSDT" if n % 3 else "AAPL",
                    exchange="SIM",
                    kind=TickKind.TRADE,
                    ts=START_NS + n,
                    price=100.0 + n % 1000,
                    qty=1.0,
                    seq=n,
                    received=now,
                )
                for n in range(self.sent, self.sent + chunk)
            ]
            await self.pipeline.put_many(ticks)
            self.sent += chunk
            await asyncio.sleep(0.001)


async def test_store_outage_while_ingesting_keeps_every_tick_exactly_once(
    postgres_url: str, unique_name: str, tmp_path: Path
) -> None:
    server = urlsplit(postgres_url)
    proxy = TcpProxy(server.hostname or "127.0.0.1", server.port or 5432)
    await proxy.start()
    store = PostgresTickStore(
        via_proxy(postgres_url, proxy.port),
        table=unique_name,
        connect_timeout=0.5,
        command_timeout=2.0,
    )
    await store.start()
    clock = LiveClock()
    pipeline = IngestPipeline(
        store,
        clock,
        spill_dir=tmp_path / "spill",
        batch_size=250,
        flush_interval=0.02,
        memory_bound=1000,
        retry_backoff=ExponentialBackoff(initial=0.02, maximum=0.2),
        write_timeout=3.0,
        drain_timeout=30.0,
    )
    await pipeline.start()
    producer = Producer(pipeline, clock)
    try:
        await producer.send(3000)
        await eventually(lambda: pipeline.status()["written"] >= 1000, within=20)

        await proxy.cut()
        await producer.send(2000)
        await eventually(
            lambda: (
                pipeline.status()["write_errors"] >= 3 and pipeline.status()["spilled_batches"] > 0
            ),
            within=20,
        )
        assert pipeline.status()["state"] == "degraded"
        await producer.send(2000)  # more arrives while the store is unreachable

        await proxy.restore()
        await producer.send(3000)
        await pipeline.stop()
    finally:
        await pipeline.stop()
        await store.close()
        await proxy.close()

    status = pipeline.status()
    assert status["received"] == producer.sent == 10_000
    assert status["pending"] == 0
    assert status["written"] == 10_000
    assert status["spilled_ticks"] > 0
    assert not list((tmp_path / "spill").glob("*.spill"))

    conn = await asyncpg.connect(postgres_url)
    try:
        total, distinct = await conn.fetchrow(
            f"SELECT count(*), count(DISTINCT seq) FROM {unique_name}"
        )
        in_insert_order = [
            row["seq"] for row in await conn.fetch(f"SELECT seq FROM {unique_name} ORDER BY ord")
        ]
    finally:
        await conn.close()
    assert (total, distinct) == (10_000, 10_000)
    assert in_insert_order == list(range(10_000))
