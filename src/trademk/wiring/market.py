"""Market data for one process: tick store, price cache, ingestion, feed, read service.

In a split deployment exactly one process reads the venue and writes the tick
store (``publish_to``: it relays its ticks through Redis); the others relay
from Redis (``relay_from``) and only read the store.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import structlog

from trademk.config import Settings
from trademk.domain.calendar import NyseCalendar
from trademk.domain.ports import MarketDataFeed, TickStore
from trademk.engine.clock import Clock
from trademk.engine.market_data import MarketDataService
from trademk.engine.market_pump import MarketDataPump
from trademk.engine.price_cache import LatestPriceCache
from trademk.ingest import IngestPipeline
from trademk.messaging.redis_ticks import RedisTickFeed, RedisTickPublisher
from trademk.observability.metrics import Metrics
from trademk.storage.ticks import open_tick_store
from trademk.venues.feeds import build_feed

log = structlog.get_logger(__name__)


def feed_symbols(settings: Settings) -> list[str]:
    """The symbols a feed can carry: Binance is crypto only, Alpaca's stock feed stocks only."""
    if settings.feed == "binance":
        return list(settings.crypto_symbols)
    if settings.feed == "alpaca":
        return list(settings.stock_symbols)
    return settings.symbols


def ticks_stream(settings: Settings) -> str:
    """The Redis stream the ingest process relays its ticks on."""
    return f"{settings.redis_namespace}:ticks"


class MarketDataStack:
    """Owns the market-data components and starts/stops them in order."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        calendar: NyseCalendar,
        *,
        run_feed: bool = True,
        metrics: Metrics | None = None,
        relay_from: aioredis.Redis | None = None,
        publish_to: aioredis.Redis | None = None,
    ) -> None:
        """``relay_from``: take ticks from the stream ``ticks_stream(settings)`` instead
        of the venue, and write none to the store (another process does).
        ``publish_to``: relay every tick of this process's feed to that stream.
        """
        if relay_from is not None and publish_to is not None:
            raise ValueError("a stack relays ticks from Redis or publishes them, not both")
        # Replaying the tick store must not write the same ticks into it again; relayed
        # ticks are written by the process that read them from the venue.
        ingest = relay_from is None and not (
            settings.feed == "replay" and not settings.replay_source
        )
        self.settings = settings
        self.prices = LatestPriceCache()
        self.store: TickStore = open_tick_store(settings.tick_store_url)
        feed: MarketDataFeed | None = None
        if run_feed:
            feed = (
                RedisTickFeed(relay_from, ticks_stream(settings), clock=clock)
                if relay_from is not None
                else build_feed(settings, clock, self.store, calendar)
            )
        feed_name = feed.name if feed is not None else settings.feed
        self.pipeline: IngestPipeline | None = (
            IngestPipeline(
                self.store,
                clock,
                spill_dir=settings.data_dir / "spill",
                batch_size=settings.ingest_batch_size,
                flush_interval=settings.ingest_flush_interval,
                queue_capacity=settings.ingest_queue_capacity,
                memory_bound=settings.ingest_memory_bound,
                on_written=metrics.ingest_hook(feed_name) if metrics is not None else None,
            )
            if ingest
            else None
        )
        self.pump: MarketDataPump | None = None
        if feed is not None:
            self.pump = MarketDataPump(feed, self.prices, self.pipeline, feed_symbols(settings))
        self.publisher: RedisTickPublisher | None = None
        if publish_to is not None:
            self.publisher = RedisTickPublisher(publish_to, ticks_stream(settings))
            self.prices.add_listener(self.publisher.on_tick)
        self.service = MarketDataService(self.store, self.prices, settings.symbols)
        if self.pump is not None:
            self.service.add_status_source(self.pump.feed.name, self.pump.status)
        if self.publisher is not None:
            self.service.add_status_source("tick-relay", self.publisher.status)
        if metrics is not None:
            self._report_to(metrics)

    def _report_to(self, metrics: Metrics) -> None:
        """Let Prometheus read the feed, the ingest pipeline and the relay at scrape time."""
        if self.pump is not None:
            metrics.watch_feed(self.pump.status)
        if self.pipeline is not None:
            metrics.watch_ingest(self.pipeline.status)
        if self.publisher is not None:
            metrics.watch_relay(self.publisher.status)

    async def start(self) -> None:
        await self.store.start()
        if self.pipeline is not None:
            await self.pipeline.start()
        if self.publisher is not None:
            await self.publisher.start()
        if self.pump is not None:
            await self.pump.start()
        log.info(
            "market data started",
            feed=self.pump.feed.name if self.pump else None,
            tick_store=type(self.store).__name__,
            relays_to=self.publisher.stream_key if self.publisher else None,
        )

    async def stop(self) -> None:
        if self.pump is not None:
            await self.pump.stop()
        if self.publisher is not None:
            await self.publisher.stop()
        if self.pipeline is not None:
            await self.pipeline.stop()
        await self.store.close()

    async def check_store(self) -> dict[str, Any]:
        return await self.store.health()
