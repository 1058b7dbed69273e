"""Latest-price cache: trades, quotes, snapshots and listeners."""

from __future__ import annotations

import dataclasses

import pytest

from trademk.domain.market import Tick, TickKind
from trademk.engine.price_cache import LatestPriceCache, PriceSnapshot


def trade(symbol: str, price: float, qty: float = 1.0, ts: int = 1, exchange: str = "X") -> Tick:
    return Tick(symbol=symbol, exchange=exchange, kind=TickKind.TRADE, ts=ts, price=price, qty=qty)


def quote(symbol: str, bid: float, ask: float, ts: int = 1) -> Tick:
    return Tick(
        symbol=symbol,
        exchange="X",
        kind=TickKind.QUOTE,
        ts=ts,
        price=(bid + ask) / 2,
        bid=bid,
        bid_size=2.0,
        ask=ask,
        ask_size=3.0,
    )


def test_unknown_symbol_has_no_snapshot_or_price() -> None:
    cache = LatestPriceCache()
    assert cache.get("AAPL") is None
    assert cache.last_price("AAPL") is None
    assert cache.symbols() == []


def test_trade_updates_last_trade_fields() -> None:
    cache = LatestPriceCache()
    cache.update(trade("AAPL", 190.0, qty=5, ts=10))
    cache.update(trade("AAPL", 191.5, qty=7, ts=20))
    snap = cache.get("AAPL")
    assert snap is not None
    assert (snap.last_price, snap.last_size, snap.last_trade_ts) == (191.5, 7, 20)
    assert snap.bid is None and snap.quote_ts is None
    assert cache.last_price("AAPL") == 191.5


def test_quote_updates_book_fields_and_keeps_last_trade() -> None:
    cache = LatestPriceCache()
    cache.update(trade("BTCUSDT", 60_000.0, ts=1))
    cache.update(quote("BTCUSDT", 60_010.0, 60_012.0, ts=2))
    snap = cache.get("BTCUSDT")
    assert snap is not None
    assert (snap.bid, snap.bid_size, snap.ask, snap.ask_size, snap.quote_ts) == (
        60_010.0,
        2.0,
        60_012.0,
        3.0,
        2,
    )
    assert snap.last_price == 60_000.0
    assert snap.mid == 60_011.0
    assert cache.last_price("BTCUSDT") == 60_000.0


def test_last_price_falls_back_to_quote_mid_without_trades() -> None:
    cache = LatestPriceCache()
    cache.update(quote("ETHUSDT", 3000.0, 3002.0))
    assert cache.last_price("ETHUSDT") == 3001.0
    snap = cache.get("ETHUSDT")
    assert snap is not None and snap.price == 3001.0


def test_snapshot_is_frozen_and_detached_from_later_updates() -> None:
    cache = LatestPriceCache()
    cache.update(trade("MSFT", 400.0))
    snap = cache.get("MSFT")
    assert isinstance(snap, PriceSnapshot)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.last_price = 1.0  # type: ignore[misc]
    cache.update(trade("MSFT", 401.0))
    assert snap.last_price == 400.0


def test_symbols_lists_every_symbol_seen() -> None:
    cache = LatestPriceCache()
    for sym in ("SOLUSDT", "AAPL", "BTCUSDT", "AAPL"):
        cache.update(trade(sym, 1.0))
    assert cache.symbols() == ["AAPL", "BTCUSDT", "SOLUSDT"]
    assert "AAPL" in cache and len(cache) == 3


def test_snapshot_reports_exchange_of_latest_tick() -> None:
    cache = LatestPriceCache()
    cache.update(trade("BTCUSDT", 1.0, exchange="BINANCE"))
    cache.update(trade("BTCUSDT", 2.0, exchange="SIM"))
    snap = cache.get("BTCUSDT")
    assert snap is not None and snap.exchange == "SIM"


def test_listeners_see_each_tick_after_the_update() -> None:
    cache = LatestPriceCache()
    seen: list[tuple[float, float | None]] = []
    cache.add_listener(lambda t: seen.append((t.price, cache.last_price(t.symbol))))
    cache.update(trade("AAPL", 10.0))
    cache.update(trade("AAPL", 11.0))
    assert seen == [(10.0, 10.0), (11.0, 11.0)]


def test_failing_listener_does_not_stop_others_or_the_update() -> None:
    cache = LatestPriceCache()
    seen: list[float] = []

    def broken(_: Tick) -> None:
        raise RuntimeError("boom")

    cache.add_listener(broken)
    cache.add_listener(lambda t: seen.append(t.price))
    cache.update(trade("AAPL", 10.0))
    assert seen == [10.0]
    assert cache.last_price("AAPL") == 10.0
    assert cache.listener_errors == 1


def test_removed_listener_is_no_longer_called() -> None:
    cache = LatestPriceCache()
    seen: list[float] = []

    def listener(t: Tick) -> None:
        seen.append(t.price)

    cache.add_listener(listener)
    cache.update(trade("AAPL", 1.0))
    cache.remove_listener(listener)
    cache.update(trade("AAPL", 2.0))
    assert seen == [1.0]
