from decimal import Decimal

from trademk.domain.market import Tick, TickKind
from trademk.engine.price_cache import LatestPriceCache


def _quote(bid: float, ask: float, bid_size: float = 2.0) -> Tick:
    return Tick("BTCUSDT", "T", TickKind.QUOTE, 1, (bid + ask) / 2, 0.0, bid, bid_size, ask, 1.5)


def test_decimals_are_the_shortest_round_trip_of_each_float() -> None:
    cache = LatestPriceCache()
    assert cache.decimals("BTCUSDT") is None
    cache.update(_quote(0.1, 0.30000000000000004))
    prices = cache.decimals("BTCUSDT")
    assert prices is not None
    assert (prices.bid, prices.ask) == (Decimal("0.1"), Decimal("0.30000000000000004"))
    assert (prices.bid_size, prices.ask_size) == (Decimal("2.0"), Decimal("1.5"))
    assert prices.last_price is None
    assert prices.price == Decimal(repr((0.1 + 0.30000000000000004) / 2))


def test_decimals_follow_the_latest_tick_and_prefer_the_last_trade() -> None:
    cache = LatestPriceCache()
    cache.update(_quote(100.0, 101.0, bid_size=0.0))
    first = cache.decimals("BTCUSDT")
    assert first is not None and first.bid_size is None  # a non-positive size is unknown
    assert cache.decimals("BTCUSDT") is first  # shared until the next tick
    cache.update(Tick("BTCUSDT", "T", TickKind.TRADE, 2, 100.5, 0.2))
    second = cache.decimals("BTCUSDT")
    assert second is not first
    assert second is not None and second.price == second.last_price == Decimal("100.5")
    assert second.bid == Decimal("100.0")
