"""A scripted Binance session lands in the tick store exactly once, through a dropped connection.

Binance fake (real socket) → BinanceFeed → MarketDataPump → IngestPipeline →
DuckDB; the server cuts the connection mid-burst and replays its last events
after the reconnect.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fakes.binance_ws import FakeBinanceServer
from trademk.domain.market import TickKind
from trademk.engine.clock import LiveClock
from trademk.engine.market_pump import MarketDataPump
from trademk.engine.price_cache import LatestPriceCache
from trademk.ingest import IngestPipeline
from trademk.storage.ticks import DuckDBTickStore
from trademk.venues.binance.feed import BinanceFeed
from trademk.venues.reconnect import ExponentialBackoff

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
TRADES_PER_SYMBOL = 150


async def test_session_arrives_in_store_exactly_once(tmp_path: Path) -> None:
    clock = LiveClock()
    store = DuckDBTickStore(tmp_path / "ticks.duckdb")
    await store.start()
    pipeline = IngestPipeline(
        store, clock, spill_dir=tmp_path / "spill", batch_size=50, flush_interval=0.02
    )
    await pipeline.start()
    async with FakeBinanceServer(replay_last=20) as server:
        feed = BinanceFeed(
            server.url,
            clock=clock,
            silence_timeout=2.0,
            backoff=ExponentialBackoff(initial=0.01, maximum=0.1),
        )
        pump = MarketDataPump(feed, LatestPriceCache(), pipeline, SYMBOLS)
        await pump.start()
        await server.wait_for_connections(1)
        sent: list[dict[str, object]] = []

        def publish(first: int, last: int) -> None:
            for i in range(first, last):
                for n, symbol in enumerate(SYMBOLS):
                    sent.append(server.trade(symbol, f"{100 + i + n * 1000}.25", f"0.{500 + i}"))
                    server.book_ticker(symbol, f"{99 + i}", "1", f"{101 + i}", "2")

        async def written(count: int) -> None:
            async with asyncio.timeout(20):
                while pipeline.status()["written"] < count:
                    await asyncio.sleep(0.02)

        half = TRADES_PER_SYMBOL // 2
        publish(0, half)
        await written(4 * half)
        # Cut the connection; on reconnect the server replays its last 20 events.
        server.drop_connections()
        await server.wait_for_connections(2)
        publish(half, TRADES_PER_SYMBOL)
        await written(4 * TRADES_PER_SYMBOL)
        await asyncio.sleep(0.3)  # anything still in flight would show up as extra rows
        await pump.stop()
        await pipeline.stop()
    assert len(server.connections) >= 2, "the feed should have reconnected"
    for symbol in SYMBOLS:
        stored = await store.ticks(symbol, limit=10_000)
        trades = sorted((t for t in stored if t.kind is TickKind.TRADE), key=lambda t: t.seq or 0)
        quotes = [t for t in stored if t.kind is TickKind.QUOTE]
        expected = sorted((d for d in sent if d["s"] == symbol), key=lambda d: d["t"])
        assert [t.seq for t in trades] == [d["t"] for d in expected]
        assert [(t.price, t.qty, t.ts) for t in trades] == [
            (float(d["p"]), float(d["q"]), d["T"] * 1_000_000) for d in expected
        ]
        assert all(t.exchange == "BINANCE" for t in trades)
        assert len(quotes) == len({q.seq for q in quotes}) == TRADES_PER_SYMBOL
    assert feed.status()["duplicates"] > 0
    await store.close()
