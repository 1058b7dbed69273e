"""ReplayFeed: timestamp order, pacing, CSV/Parquet input and store input."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.fakes.flaky_tick_store import FlakyTickStore
from trademk.domain.market import NANOS_PER_SECOND, Tick, TickKind
from trademk.domain.ports import MarketDataFeed
from trademk.engine.clock import SimClock, datetime_to_ns
from trademk.venues.replay import ReplayFeed, TickFileError

T0 = datetime_to_ns(datetime(2025, 3, 3, 15, 0, tzinfo=UTC))


async def collect(feed: ReplayFeed) -> list[Tick]:
    out = []
    async for item in feed.stream():
        assert isinstance(item, Tick)
        out.append(item)
    return out


class RecordingSleep:
    """Fake sleep that moves a SimClock forward by the requested time."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(round(seconds * NANOS_PER_SECOND))


def write_csv(path: Path) -> Path:
    path.write_text(
        "symbol,exchange,kind,ts,price,qty,bid,bid_size,ask,ask_size,seq\n"
        "AAPL,IEX,trade,2025-03-03T15:00:02Z,190.5,10,,,,,7\n"
        "AAPL,IEX,quote,2025-03-03T15:00:00.5Z,190.25,,190.2,3,190.3,4,\n"
        "MSFT,IEX,trade,2025-03-03T10:00:01-05:00,400.0,5,,,,,\n"
    )
    return path


async def test_csv_file_is_replayed_in_timestamp_order_with_parsed_fields(tmp_path: Path) -> None:
    feed = ReplayFeed(SimClock(), path=write_csv(tmp_path / "ticks.csv"), speed=0)
    ticks = await collect(feed)
    assert [t.ts for t in ticks] == [
        T0 + NANOS_PER_SECOND // 2,
        T0 + NANOS_PER_SECOND,
        T0 + 2 * NANOS_PER_SECOND,
    ]
    quote, msft, trade = ticks
    assert quote.kind is TickKind.QUOTE
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size, quote.seq) == (
        190.2,
        3,
        190.3,
        4,
        None,
    )
    assert (msft.symbol, msft.price, msft.qty, msft.exchange) == ("MSFT", 400.0, 5.0, "IEX")
    assert (trade.kind, trade.seq, trade.bid) == (TickKind.TRADE, 7, None)
    assert feed.status()["ticks"] == 3
    assert feed.status()["state"] == "stopped"


async def test_parquet_file_with_integer_nanoseconds(tmp_path: Path) -> None:
    rng = random.Random(3)
    stamps = [T0 + rng.randrange(10**12) for _ in range(300)]
    frame = pd.DataFrame(
        {
            "symbol": ["BTCUSDT" if i % 2 else "ETHUSDT" for i in range(300)],
            "ts": stamps,
            "price": [100.0 + i for i in range(300)],
            "qty": [1.5] * 300,
            "received": [s + 1000 for s in stamps],
        }
    )
    path = tmp_path / "ticks.parquet"
    frame.to_parquet(path)
    ticks = await collect(ReplayFeed(SimClock(), path=path, speed=0, default_exchange="BINANCE"))
    assert [t.ts for t in ticks] == sorted(stamps)
    assert all(t.received == t.ts + 1000 and t.exchange == "BINANCE" for t in ticks)


async def test_parquet_datetime_column_and_symbol_and_time_filters(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["A", "B", "A", "A"],
            "ts": pd.to_datetime(
                [
                    "2025-03-03 15:00:00",
                    "2025-03-03 15:00:01",
                    "2025-03-03 15:00:02",
                    "2025-03-03 15:00:03",
                ]
            ),
            "price": [1.0, 2.0, 3.0, 4.0],
        }
    )
    path = tmp_path / "dt.parquet"
    frame.to_parquet(path)
    feed = ReplayFeed(
        SimClock(),
        path=path,
        symbols=["A"],
        start=T0 + NANOS_PER_SECOND,
        end=datetime(2025, 3, 3, 15, 0, 3, tzinfo=UTC),
        speed=0,
    )
    ticks = await collect(feed)
    assert [(t.symbol, t.ts, t.price) for t in ticks] == [("A", T0 + 2 * NANOS_PER_SECOND, 3.0)]


async def test_speed_zero_never_waits(tmp_path: Path) -> None:
    clock = SimClock(T0)
    sleep = RecordingSleep(clock)
    ticks = await collect(
        ReplayFeed(clock, path=write_csv(tmp_path / "t.csv"), speed=0, sleep=sleep)
    )
    assert len(ticks) == 3
    assert sleep.calls == []


async def test_speed_multiplier_paces_and_restamps_received(tmp_path: Path) -> None:
    clock = SimClock(5 * NANOS_PER_SECOND)
    sleep = RecordingSleep(clock)
    feed = ReplayFeed(
        clock, path=write_csv(tmp_path / "t.csv"), speed=10.0, restamp_received=True, sleep=sleep
    )
    ticks = await collect(feed)
    first = ticks[0].ts
    for tick in ticks:
        # Emitted when the clock has moved a tenth of the recorded gap.
        assert tick.received == 5 * NANOS_PER_SECOND + (tick.ts - first) // 10
    assert sum(sleep.calls) == pytest.approx(0.15)


async def test_store_source_pages_through_the_range_in_order_exactly_once() -> None:
    store = FlakyTickStore()
    rng = random.Random(11)
    written: list[Tick] = []
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        stamps = [T0 + rng.randrange(3600 * NANOS_PER_SECOND) for _ in range(150)]
        stamps += [T0 + 1800 * NANOS_PER_SECOND] * 25  # a burst larger than a page at one ns
        for i, ts in enumerate(stamps):
            written.append(Tick(symbol, "BINANCE", TickKind.TRADE, ts, 1.0 + i, 1.0, seq=i))
    rng.shuffle(written)
    await store.write(written, "seed")
    start, end = T0 + 600 * NANOS_PER_SECOND, T0 + 3000 * NANOS_PER_SECOND
    feed = ReplayFeed(SimClock(), store=store, start=start, end=end, speed=0, page_size=10)
    await feed.subscribe(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    ticks = await collect(feed)
    expected = [t for t in written if start <= t.ts < end]

    def key(t: Tick) -> tuple[str, int]:
        return (t.symbol, t.seq or 0)

    assert [t.ts for t in ticks] == sorted(t.ts for t in expected)
    assert sorted(ticks, key=key) == sorted(expected, key=key)


async def test_store_source_without_bounds_reads_everything_up_to_now() -> None:
    store = FlakyTickStore()
    ticks = [Tick("AAPL", "IEX", TickKind.TRADE, T0 + i * 1000, 1.0) for i in range(30)]
    await store.write(ticks, "b")
    feed = ReplayFeed(SimClock(T0 + 10**9), store=store, symbols=["AAPL"], speed=0, page_size=8)
    assert await collect(feed) == ticks


async def test_close_stops_the_replay_early(tmp_path: Path) -> None:
    feed = ReplayFeed(SimClock(), path=write_csv(tmp_path / "t.csv"), speed=0)
    seen = []
    async for tick in feed.stream():
        seen.append(tick)
        await feed.close()
    assert len(seen) == 1


def test_store_replay_needs_symbols_and_one_source() -> None:
    feed = ReplayFeed(SimClock(), store=FlakyTickStore())
    assert isinstance(feed, MarketDataFeed)
    with pytest.raises(ValueError, match="symbols"):
        feed.stream()
    with pytest.raises(ValueError, match="exactly one"):
        ReplayFeed(SimClock())
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed(SimClock(), store=FlakyTickStore(), speed=-1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("symbol,price\nA,1\n", "missing required column"),
        ("symbol,ts,price,kind\nA,1,1.0,bogus\n", "unknown value"),
        ("symbol,ts,price\nA,yesterday,1.0\n", "ISO-8601"),
        ("symbol,ts,price\nA,,1.0\n", "empty"),
    ],
)
async def test_bad_files_raise_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(TickFileError, match=message):
        await collect(ReplayFeed(SimClock(), path=path, speed=0))


async def test_unsupported_file_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ticks.json"
    path.write_text("[]")
    with pytest.raises(TickFileError, match="unsupported"):
        await collect(ReplayFeed(SimClock(), path=path, speed=0))
