"""SimFeed: determinism, NYSE gating, sane prices, arrival rate, pacing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from trademk.domain.calendar import NyseCalendar
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Tick, TickKind
from trademk.domain.ports import MarketDataFeed
from trademk.engine.clock import SimClock, datetime_to_ns
from trademk.venues.sim import DEFAULT_INSTRUMENTS, SimFeed, SimInstrument, instrument_for

NEW_YORK = ZoneInfo("America/New_York")
CALENDAR = NyseCalendar(today=date(2025, 6, 1))


def et(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> int:
    return datetime_to_ns(datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK))


def sim_feed(start_ns: int, symbols: list[str], **options: object) -> SimFeed:
    options.setdefault("realtime", False)
    options.setdefault("calendar", CALENDAR)
    return SimFeed(SimClock(start_ns), symbols=symbols, **options)  # type: ignore[arg-type]


async def take(feed: SimFeed, count: int) -> list[Tick]:
    out: list[Tick] = []
    async for item in feed.stream():
        assert isinstance(item, Tick)
        out.append(item)
        if len(out) == count:
            break
    await feed.close()
    return out


async def take_until(feed: SimFeed, stop: Callable[[Tick], bool]) -> list[Tick]:
    out: list[Tick] = []
    async for item in feed.stream():
        assert isinstance(item, Tick)
        if stop(item):
            break
        out.append(item)
    await feed.close()
    return out


async def test_same_seed_gives_the_same_ticks_and_another_seed_does_not() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "AAPL"]
    start = et(2025, 6, 3, 10, 0)
    first = await take(sim_feed(start, symbols, seed=42), 500)
    again = await take(sim_feed(start, symbols, seed=42), 500)
    other = await take(sim_feed(start, symbols, seed=43), 500)
    assert first == again
    assert first != other


async def test_stocks_are_silent_outside_nyse_hours() -> None:
    saturday = et(2025, 6, 7, 12, 0)
    ticks = await take(sim_feed(saturday, ["AAPL", "MSFT"], rate=50), 200)
    assert ticks[0].ts >= et(2025, 6, 9, 9, 30)  # nothing until Monday's open
    assert all(CALENDAR.is_open(t.ts) for t in ticks)


async def test_crypto_keeps_ticking_across_the_close_while_stocks_stop() -> None:
    start = et(2025, 6, 6, 15, 58)
    feed = sim_feed(start, ["AAPL", "BTCUSDT"], rate=20)
    ticks = await take_until(feed, lambda t: t.ts > et(2025, 6, 6, 16, 3))
    stock = [t for t in ticks if t.symbol == "AAPL"]
    crypto = [t for t in ticks if t.symbol == "BTCUSDT"]
    close = et(2025, 6, 6, 16, 0)
    assert stock and all(t.ts < close for t in stock)
    assert any(t.ts >= close for t in crypto)


async def test_calendar_gating_can_be_disabled() -> None:
    saturday = et(2025, 6, 7, 12, 0)
    ticks = await take(sim_feed(saturday, ["AAPL"], stocks_follow_calendar=False, rate=100), 50)
    assert all(t.symbol == "AAPL" for t in ticks)
    assert ticks[-1].ts < saturday + 60 * NANOS_PER_SECOND


async def test_prices_stay_positive_and_spreads_positive_even_when_volatile() -> None:
    wild = SimInstrument("WILD", AssetClass.CRYPTO, 0.02, 5.0, 10.0, 100.0, 1.0, 4, 0)
    start = et(2025, 6, 3, 12, 0)
    feed = sim_feed(
        start, ["WILD", "BTCUSDT", "DOGEUSDT"], instruments={"WILD": wild}, rate=5.0, seed=7
    )
    ticks = await take(feed, 5000)  # ~1000 s of simulated time at a huge volatility
    kinds = {t.kind for t in ticks}
    assert kinds == {TickKind.TRADE, TickKind.QUOTE}
    for t in ticks:
        assert t.price > 0
        if t.kind is TickKind.QUOTE:
            assert t.bid is not None and t.ask is not None
            assert 0 < t.bid < t.ask
            assert t.bid_size and t.ask_size and t.bid_size > 0 and t.ask_size > 0
        else:
            assert t.qty > 0
    assert all(t.exchange == "SIM" for t in ticks)


async def test_total_rate_is_roughly_as_configured_in_simulated_time() -> None:
    start = et(2025, 6, 3, 12, 0)
    horizon = start + 100 * NANOS_PER_SECOND
    feed = sim_feed(start, ["BTCUSDT", "ETHUSDT", "SOLUSDT", "AAPL"], rate=200.0, seed=1)
    ticks = await take_until(feed, lambda t: t.ts >= horizon)
    assert 19_000 <= len(ticks) <= 21_000  # Poisson: mean 20 000, sd ~141
    per_symbol = {s: sum(t.symbol == s for t in ticks) for s in ("BTCUSDT", "AAPL")}
    assert all(4_500 <= n <= 5_500 for n in per_symbol.values())


async def test_timestamps_increase_and_seq_counts_per_symbol() -> None:
    ticks = await take(sim_feed(et(2025, 6, 3, 12, 0), ["BTCUSDT", "ETHUSDT"]), 300)
    assert all(a.ts < b.ts for a, b in itertools.pairwise(ticks))
    for symbol in ("BTCUSDT", "ETHUSDT"):
        seqs = [t.seq for t in ticks if t.symbol == symbol]
        assert seqs == list(range(1, len(seqs) + 1))


async def test_realtime_mode_waits_for_each_tick_on_the_clock() -> None:
    clock = SimClock(et(2025, 6, 3, 12, 0))
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(int(seconds * NANOS_PER_SECOND))

    feed = SimFeed(clock, symbols=["BTCUSDT"], rate=50.0, sleep=fake_sleep, realtime=True)
    ticks = await take(feed, 20)
    assert len(slept) == 20
    for t in ticks:
        assert t.received >= t.ts
    assert clock.now_ns() >= ticks[-1].ts


async def test_subscribe_adds_symbols_and_status_counts_ticks() -> None:
    feed = sim_feed(et(2025, 6, 3, 12, 0), [])
    await feed.subscribe(["BTCUSDT", "NEWCOINUSDT", "ZZZZ"])
    ticks = await take(feed, 400)
    assert {t.symbol for t in ticks} == {"BTCUSDT", "NEWCOINUSDT", "ZZZZ"}
    status = feed.status()
    assert status["ticks"] == 400
    assert status["symbols"] == ["BTCUSDT", "NEWCOINUSDT", "ZZZZ"]
    assert status["state"] == "stopped"


def test_defaults_cover_common_tickers_with_realistic_volatility() -> None:
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        inst = DEFAULT_INSTRUMENTS[symbol]
        assert inst.asset_class is AssetClass.CRYPTO and 0.6 <= inst.annual_volatility <= 0.8
    for symbol in ("AAPL", "MSFT"):
        inst = DEFAULT_INSTRUMENTS[symbol]
        assert inst.asset_class is AssetClass.STOCK and 0.2 <= inst.annual_volatility <= 0.4
    assert instrument_for("FOOUSDT").asset_class is AssetClass.CRYPTO
    assert instrument_for("FOO").asset_class is AssetClass.STOCK


def test_sim_feed_satisfies_the_port_and_rejects_bad_input() -> None:
    assert isinstance(SimFeed(SimClock()), MarketDataFeed)
    with pytest.raises(ValueError, match="rate"):
        SimFeed(SimClock(), rate=0)
    with pytest.raises(TypeError):
        SimFeed(SimClock(), symbols="BTCUSDT")
    with pytest.raises(ValueError):
        SimInstrument("X", AssetClass.STOCK, -1.0, 0.2)
