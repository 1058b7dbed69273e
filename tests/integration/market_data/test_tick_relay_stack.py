"""Two MarketDataStacks as two processes: one reads the feed and publishes, one relays.

The publishing stack runs the simulated venue feed, writes its tick store and
relays its ticks through Redis; the relaying stack opens no venue feed, writes
nothing, and its latest-price cache follows the publisher's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from trademk.config import Settings
from trademk.domain.calendar import NyseCalendar
from trademk.engine.clock import LiveClock
from trademk.observability.metrics import Metrics
from trademk.wiring.market import MarketDataStack, ticks_stream

pytestmark = pytest.mark.redis

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
CALENDAR = NyseCalendar(today=date(2026, 1, 1))


def settings_for(data_dir: Path, namespace: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        feed="sim",
        crypto_symbols=SYMBOLS,
        stock_symbols=[],
        sim_ticks_per_second=1_000.0,
        redis_namespace=namespace,
        ingest_flush_interval=0.02,
    )


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def clients(redis_url: str, unique_name: str) -> AsyncIterator[list[aioredis.Redis]]:
    """One Redis client per "process"."""
    made = [aioredis.from_url(redis_url) for _ in range(2)]
    yield made
    await made[0].delete(f"{unique_name}:ticks")
    for client in made:
        await client.aclose()


async def test_a_publishing_stacks_prices_reach_a_relaying_stack_that_writes_nothing(
    tmp_path: Path, unique_name: str, clients: list[aioredis.Redis]
) -> None:
    ingest_client, worker_client = clients
    metrics = Metrics()
    worker = MarketDataStack(
        settings_for(tmp_path / "worker", unique_name),
        LiveClock(),
        CALENDAR,
        metrics=metrics,
        relay_from=worker_client,
    )
    ingest_metrics = Metrics()
    ingest = MarketDataStack(
        settings_for(tmp_path / "ingest", unique_name),
        LiveClock(),
        CALENDAR,
        metrics=ingest_metrics,
        publish_to=ingest_client,
    )
    assert worker.pipeline is None and worker.publisher is None
    assert worker.pump is not None and worker.pump.feed.name == "relay"
    assert ingest.pipeline is not None and ingest.publisher is not None
    assert ingest.publisher.stream_key == ticks_stream(ingest.settings) == f"{unique_name}:ticks"

    await worker.start()
    worker_pump = worker.pump
    await wait_until(lambda: worker_pump.status()["connected"])
    await ingest.start()
    assert ingest.pump is not None and ingest.pipeline is not None
    ingest_pump, pipeline = ingest.pump, ingest.pipeline
    await wait_until(lambda: worker_pump.ticks >= 100 and pipeline.status()["written"] >= 100)
    assert await ingest.store.latest("BTCUSDT") is not None
    assert await worker.store.latest("BTCUSDT") is None  # the store is read, never written

    status = worker_pump.status()
    assert (status["name"], status["state"], status["connected"]) == ("relay", "running", True)
    assert 'trademk_feed_connected{feed="relay"} 1.0' in metrics.exposition()[0].decode()
    assert "tick-relay" in ingest.service.stream_status()

    await ingest.stop()  # the publisher flushes on the way down
    await wait_until(lambda: worker_pump.ticks == ingest_pump.ticks)
    written = ingest_metrics.registry.get_sample_value(
        "trademk_tick_relay_written_ticks_total", {"stream": f"{unique_name}:ticks"}
    )
    assert written == ingest_pump.ticks
    for symbol in SYMBOLS:
        assert worker.prices.get(symbol) == ingest.prices.get(symbol) is not None
    await worker.stop()
    assert worker_pump.status()["state"] == "stopped"


def test_a_stack_cannot_both_relay_and_publish(
    tmp_path: Path, unique_name: str, redis_url: str
) -> None:
    client = aioredis.from_url(redis_url)
    with pytest.raises(ValueError, match="not both"):
        MarketDataStack(
            settings_for(tmp_path, unique_name),
            LiveClock(),
            CALENDAR,
            relay_from=client,
            publish_to=client,
        )
