"""Market-data endpoints over the real tick store and price cache."""

from datetime import UTC, datetime

import pytest

from tests.support.trading_api import TradingFactory
from trademk.domain.market import Tick, TickKind
from trademk.engine.clock import datetime_to_ns

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
MINUTE = 60_000_000_000


def trade(minute: int, second: int, price: float, qty: float, seq: int) -> Tick:
    ts = datetime_to_ns(T0) + minute * MINUTE + second * 1_000_000_000
    return Tick("BTCUSDT", "BINANCE", TickKind.TRADE, ts, price, qty, seq=seq, received=ts)


TRADES = [
    trade(0, 1, 100.0, 1.0, 1),
    trade(0, 30, 110.0, 1.0, 2),
    trade(0, 59, 105.0, 2.0, 3),
    trade(2, 0, 90.0, 1.0, 4),
]


async def test_ticks_newest_first_with_range_and_limit(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        await api.platform.market.store.write(TRADES)
        body = (await api.get("/api/v1/market-data/ticks/btcusdt", limit=2)).json()
        assert body["symbol"] == "BTCUSDT" and body["count"] == 2
        assert [t["seq"] for t in body["ticks"]] == [4, 3]
        ranged = (
            await api.get(
                "/api/v1/market-data/ticks/BTCUSDT",
                start_time="2026-11-23T14:00:30Z",
                end_time="2026-11-23T14:02:00Z",
            )
        ).json()
        assert [t["seq"] for t in ranged["ticks"]] == [3, 2]
        assert ranged["ticks"][0]["timestamp"] == "2026-11-23T14:00:59Z"


async def test_bars_aggregate_ohlcv_in_the_store(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        await api.platform.market.store.write(TRADES)
        body = (await api.get("/api/v1/market-data/bars/BTCUSDT", interval="1m")).json()
        assert body["interval"] == "1m" and body["count"] == 2
        first, second = body["bars"]
        assert first["timestamp"] == "2026-11-23T14:00:00Z"
        assert (first["open"], first["high"], first["low"], first["close"]) == (100, 110, 100, 105)
        assert first["volume"] == 4.0 and first["trades"] == 3
        assert first["vwap"] == pytest.approx((100 + 110 + 210) / 4)
        assert second["timestamp"] == "2026-11-23T14:02:00Z"
        five = (await api.get("/api/v1/market-data/bars/BTCUSDT", interval="5m")).json()
        assert five["count"] == 1 and five["bars"][0]["close"] == 90.0


async def test_latest_comes_from_the_live_cache(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        api.quote("ETHUSDT", bid=3000.0, ask=3002.0)
        body = (await api.get("/api/v1/market-data/latest/ETHUSDT")).json()
        assert (body["bid"], body["ask"], body["price"]) == (3000.0, 3002.0, 3001.0)
        api.quote("ETHUSDT", bid=3010.0, ask=3012.0)
        moved = (await api.get("/api/v1/market-data/latest/ETHUSDT")).json()
        assert moved["price"] == 3011.0


async def test_latest_falls_back_to_the_store(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        await api.platform.market.store.write(TRADES)
        body = (await api.get("/api/v1/market-data/latest/BTCUSDT")).json()
        assert body["last_trade_price"] == 90.0
        nothing = await api.get("/api/v1/market-data/latest/SOLUSDT")
        assert nothing.status_code == 404 and "no market data" in nothing.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/market-data/latest/NOPE",
        "/api/v1/market-data/ticks/NOPE",
        "/api/v1/market-data/bars/NOPE",
    ],
)
async def test_unknown_symbol_is_404_saying_so(trading_api: TradingFactory, path: str) -> None:
    async with trading_api() as api:
        response = await api.get(path)
        assert response.status_code == 404
        assert "unknown symbol 'NOPE'" in response.json()["detail"]


async def test_bad_interval_and_inverted_range_are_422(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        bad = await api.get("/api/v1/market-data/bars/BTCUSDT", interval="7m")
        assert bad.status_code == 422 and "interval" in bad.text
        inverted = await api.get(
            "/api/v1/market-data/ticks/BTCUSDT",
            start_time="2026-11-23T15:00:00Z",
            end_time="2026-11-23T14:00:00Z",
        )
        assert inverted.status_code == 422
        assert "must be before end_time" in inverted.json()["detail"][0]["msg"]


async def test_symbols_lists_the_universe(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        symbols = (await api.get("/api/v1/market-data/symbols")).json()
        assert len(symbols) == 30
        crypto = (await api.get("/api/v1/market-data/symbols", asset_type="crypto")).json()
        assert {s["asset_type"] for s in crypto} == {"crypto"} and len(crypto) == 15
        btc = next(s for s in crypto if s["ticker"] == "BTCUSDT")
        assert btc["alpaca_symbol"] == "BTC/USD"


async def test_stream_status_reports_ingest(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        body = (await api.get("/api/v1/market-data/stream_status")).json()
        assert body["ingest"]["state"] == "running"
        assert "received" in body["ingest"]
