"""TickStore contract: every backend passes this one suite (DESIGN.md §3, §5).

DuckDB runs on a file under tmp_path, PostgreSQL on the real test server with a table
of its own per test, and QuestDB only when ``QUESTDB_URL`` is set (CI has no QuestDB).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick, TickKind
from trademk.domain.ports import TickStore
from trademk.storage.ticks import TickStoreError, open_tick_store

QUESTDB_URL = os.environ.get("QUESTDB_URL")
BACKENDS = ["duckdb", "postgres", *(["questdb"] if QUESTDB_URL else [])]

SECOND = NANOS_PER_SECOND
MINUTE = 60 * SECOND
T0 = 1_699_920_000 * SECOND  # a UTC midnight, so a multiple of every bar interval
SYMBOL = "BTCUSDT"


def trade(
    ts: int,
    price: float,
    qty: float = 1.0,
    *,
    seq: int | None = None,
    symbol: str = SYMBOL,
    exchange: str = "binance",
) -> Tick:
    return Tick(symbol, exchange, TickKind.TRADE, ts, price, qty, seq=seq, received=ts + 7)


def quote(ts: int, bid: float, ask: float, *, symbol: str = SYMBOL, seq: int | None = None) -> Tick:
    return Tick(
        symbol,
        "binance",
        TickKind.QUOTE,
        ts,
        (bid + ask) / 2,
        0.0,
        bid=bid,
        bid_size=1.5,
        ask=ask,
        ask_size=2.5,
        seq=seq,
        received=ts + 9,
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path) -> tuple[str, str]:
    """(backend name, store URL); resolved outside the event loop."""
    if request.param == "duckdb":
        return "duckdb", f"duckdb:///{tmp_path}/ticks.duckdb"
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("postgres_url")
    assert QUESTDB_URL is not None
    return "questdb", QUESTDB_URL


@pytest.fixture
async def store(backend: tuple[str, str], unique_name: str) -> AsyncIterator[TickStore]:
    name, url = backend
    options = {} if name == "duckdb" else {"table": unique_name}
    tick_store = open_tick_store(url, **options)
    await tick_store.start()
    try:
        yield tick_store
    finally:
        await tick_store.close()
        if name == "questdb":
            await _drop_questdb_tables(url, unique_name)


async def _drop_questdb_tables(url: str, table: str) -> None:
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    conn = await asyncpg.connect(
        host=parts.hostname,
        port=int(query.get("pg_port", 8812)),
        user=query.get("user", "admin"),
        password=query.get("password", "quest"),
        database=query.get("database", "qdb"),
    )
    try:
        for name in (table, f"{table}_batches"):
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        await conn.close()


def assert_bar(
    bar: Bar,
    *,
    ts: int,
    ohlc: tuple[float, float, float, float],
    volume: float,
    vwap: float,
    trades: int,
    interval: str,
    exchange: str = "binance",
) -> None:
    assert (bar.symbol, bar.exchange, bar.interval, bar.ts) == (SYMBOL, exchange, interval, ts)
    assert (bar.open, bar.high, bar.low, bar.close) == ohlc
    assert bar.volume == pytest.approx(volume)
    assert bar.vwap == pytest.approx(vwap)
    assert bar.trades == trades


async def test_store_implements_the_port(store: TickStore) -> None:
    assert isinstance(store, TickStore)


async def test_round_trip_keeps_every_field_of_trades_and_quotes(store: TickStore) -> None:
    written = [
        Tick(SYMBOL, "binance", TickKind.TRADE, T0 + 123_456_789, 37_000.25, 0.125, seq=42),
        Tick(SYMBOL, "binance", TickKind.TRADE, T0 + 223_456_789, 37_001.5, 2.0, received=T0),
        quote(T0 + 323_456_789, 36_999.5, 37_000.5, seq=9_000_000_001),
        Tick(
            SYMBOL,
            "binance",
            TickKind.QUOTE,
            T0 + 423_456_789,
            37_000.0,
            0.0,
            bid=36_999.0,
            bid_size=None,
            ask=37_001.0,
            ask_size=None,
            received=T0 + 500_000_001,
        ),
    ]

    assert await store.write(written) == 4

    assert await store.ticks(SYMBOL) == list(reversed(written))


async def test_ticks_are_newest_first_with_start_inclusive_and_end_exclusive(
    store: TickStore,
) -> None:
    series = [trade(T0 + i * SECOND, 100.0 + i, seq=i) for i in range(6)]
    await store.write([*series, trade(T0 + 2 * SECOND, 1.0, symbol="ETHUSDT")])

    in_range = await store.ticks(SYMBOL, start=T0 + SECOND, end=T0 + 4 * SECOND)
    assert [t.ts for t in in_range] == [T0 + 3 * SECOND, T0 + 2 * SECOND, T0 + SECOND]
    assert [t.ts for t in await store.ticks(SYMBOL, start=T0 + 4 * SECOND)] == [
        T0 + 5 * SECOND,
        T0 + 4 * SECOND,
    ]
    assert [t.ts for t in await store.ticks(SYMBOL, end=T0 + SECOND)] == [T0]
    assert await store.ticks(SYMBOL, start=T0 + SECOND, end=T0 + SECOND) == []
    assert [t.symbol for t in await store.ticks("ETHUSDT")] == ["ETHUSDT"]


async def test_ticks_limit_keeps_the_newest(store: TickStore) -> None:
    await store.write([trade(T0 + i * SECOND, 100.0 + i, seq=i) for i in range(10)])

    newest = await store.ticks(SYMBOL, limit=3)

    assert [t.seq for t in newest] == [9, 8, 7]


async def test_ticks_exchange_filter(store: TickStore) -> None:
    await store.write(
        [
            trade(T0, 100.0, seq=1, exchange="binance"),
            trade(T0 + SECOND, 101.0, seq=2, exchange="coinbase"),
            trade(T0 + 2 * SECOND, 102.0, seq=3, exchange="binance"),
        ]
    )

    coinbase = await store.ticks(SYMBOL, exchange="coinbase")
    binance = await store.ticks(SYMBOL, exchange="binance")

    assert [(t.exchange, t.seq) for t in coinbase] == [("coinbase", 2)]
    assert [(t.exchange, t.seq) for t in binance] == [("binance", 3), ("binance", 1)]
    assert await store.ticks(SYMBOL, exchange="kraken") == []


async def test_latest_is_the_newest_tick_of_any_kind(store: TickStore) -> None:
    assert await store.latest(SYMBOL) is None
    newest_quote = quote(T0 + 2 * SECOND, 99.5, 100.5)
    await store.write(
        [
            trade(T0 + SECOND, 100.0, seq=1),
            newest_quote,
            trade(T0, 98.0, seq=0, exchange="coinbase"),
            trade(T0 + 3 * SECOND, 5.0, symbol="ETHUSDT"),
        ]
    )

    assert await store.latest(SYMBOL) == newest_quote
    coinbase = await store.latest(SYMBOL, exchange="coinbase")
    assert coinbase is not None and coinbase.price == 98.0
    assert await store.latest("SOLUSDT") is None


async def test_ticks_with_equal_timestamps_order_by_seq_missing_seq_last(
    store: TickStore,
) -> None:
    same = T0 + 10 * SECOND
    await store.write([trade(same, 50.0, seq=8), trade(same, 70.0), trade(same, 60.0, seq=7)])

    assert [t.price for t in await store.ticks(SYMBOL)] == [70.0, 50.0, 60.0]
    latest = await store.latest(SYMBOL)
    assert latest is not None and latest.price == 70.0


async def test_bars_1m_and_5m_from_hand_computed_trades(store: TickStore) -> None:
    await store.write(
        [
            trade(T0 + 10 * SECOND, 100.0, 1.0, seq=1),
            trade(T0 + 20 * SECOND, 102.0, 2.0, seq=2),
            quote(T0 + 30 * SECOND, 499.0, 501.0),  # quotes never enter bars
            trade(T0 + 50 * SECOND, 99.0, 1.0, seq=3),
            trade(T0 + 61 * SECOND, 101.0, 3.0, seq=4),
            # nothing in [T0+2m, T0+3m): that bar must be absent, not zero-filled
            trade(T0 + 3 * MINUTE, 103.0, 1.0, seq=5),
            trade(T0 + 4 * MINUTE - 1, 104.0, 1.0, seq=6),
            trade(T0 + 6 * MINUTE, 105.0, 2.0, seq=7),
            trade(T0 + 6 * MINUTE, 1.0, 1.0, seq=1, symbol="ETHUSDT"),
        ]
    )

    one_minute = await store.bars(SYMBOL, "1m")
    five_minute = await store.bars(SYMBOL, "5m")

    assert [b.ts for b in one_minute] == [T0, T0 + MINUTE, T0 + 3 * MINUTE, T0 + 6 * MINUTE]
    assert_bar(
        one_minute[0],
        ts=T0,
        ohlc=(100.0, 102.0, 99.0, 99.0),
        volume=4.0,
        vwap=403.0 / 4,
        trades=3,
        interval="1m",
    )
    assert_bar(
        one_minute[1],
        ts=T0 + MINUTE,
        ohlc=(101.0, 101.0, 101.0, 101.0),
        volume=3.0,
        vwap=101.0,
        trades=1,
        interval="1m",
    )
    assert_bar(
        one_minute[2],
        ts=T0 + 3 * MINUTE,
        ohlc=(103.0, 104.0, 103.0, 104.0),
        volume=2.0,
        vwap=103.5,
        trades=2,
        interval="1m",
    )
    assert_bar(
        one_minute[3],
        ts=T0 + 6 * MINUTE,
        ohlc=(105.0, 105.0, 105.0, 105.0),
        volume=2.0,
        vwap=105.0,
        trades=1,
        interval="1m",
    )
    assert len(five_minute) == 2
    assert_bar(
        five_minute[0],
        ts=T0,
        ohlc=(100.0, 104.0, 99.0, 104.0),
        volume=9.0,
        vwap=(403.0 + 303.0 + 103.0 + 104.0) / 9,
        trades=6,
        interval="5m",
    )
    assert_bar(
        five_minute[1],
        ts=T0 + 5 * MINUTE,
        ohlc=(105.0, 105.0, 105.0, 105.0),
        volume=2.0,
        vwap=105.0,
        trades=1,
        interval="5m",
    )


async def test_bar_open_and_close_break_timestamp_ties_by_seq_missing_seq_last(
    store: TickStore,
) -> None:
    same = T0 + 10 * SECOND
    await store.write([trade(same, 50.0, seq=8), trade(same, 70.0), trade(same, 60.0, seq=7)])

    (bar,) = await store.bars(SYMBOL, "1m")

    assert (bar.open, bar.high, bar.low, bar.close) == (60.0, 70.0, 50.0, 70.0)


async def test_bar_open_and_close_break_full_ties_by_insertion_order(
    store: TickStore, backend: tuple[str, str]
) -> None:
    if backend[0] == "questdb":
        pytest.skip("QuestDB dedup keys make equal (ts, exchange, seq) trades one trade")
    same = T0 + 10 * SECOND
    await store.write([trade(same, 2.0), trade(same, 1.0)])
    await store.write([trade(same, 3.0)])

    (bar,) = await store.bars(SYMBOL, "1m")

    assert (bar.open, bar.close, bar.trades) == (2.0, 3.0, 3)
    assert [t.price for t in await store.ticks(SYMBOL)] == [3.0, 1.0, 2.0]


async def test_bar_vwap_is_the_mean_price_when_volume_is_zero(store: TickStore) -> None:
    await store.write([trade(T0, 10.0, 0.0, seq=1), trade(T0 + SECOND, 20.0, 0.0, seq=2)])

    (bar,) = await store.bars(SYMBOL, "1m")

    assert bar.volume == 0.0
    assert bar.vwap == pytest.approx(15.0)


async def test_bars_limit_returns_the_newest_buckets_oldest_first(store: TickStore) -> None:
    await store.write([trade(T0 + i * MINUTE, 100.0 + i, seq=i) for i in range(5)])

    bars = await store.bars(SYMBOL, "1m", limit=2)

    assert [b.ts for b in bars] == [T0 + 3 * MINUTE, T0 + 4 * MINUTE]
    assert [b.close for b in bars] == [103.0, 104.0]


async def test_bars_cover_only_trades_inside_the_range(store: TickStore) -> None:
    await store.write(
        [
            trade(T0 + 10 * SECOND, 100.0, seq=1),
            trade(T0 + 61 * SECOND, 101.0, seq=2),
            trade(T0 + 3 * MINUTE, 103.0, seq=3),
            trade(T0 + 3 * MINUTE + 40 * SECOND, 104.0, seq=4),
        ]
    )

    bars = await store.bars(SYMBOL, "1m", start=T0 + MINUTE, end=T0 + 3 * MINUTE + 40 * SECOND)

    assert [(b.ts, b.open, b.close, b.trades) for b in bars] == [
        (T0 + MINUTE, 101.0, 101.0, 1),
        (T0 + 3 * MINUTE, 103.0, 103.0, 1),
    ]


async def test_bars_across_exchanges_and_filtered_to_one(store: TickStore) -> None:
    await store.write(
        [
            trade(T0, 100.0, 1.0, seq=1, exchange="binance"),
            trade(T0 + SECOND, 110.0, 3.0, seq=1, exchange="coinbase"),
        ]
    )

    (mixed,) = await store.bars(SYMBOL, "1h")
    (coinbase,) = await store.bars(SYMBOL, "1h", exchange="coinbase")

    assert (mixed.exchange, mixed.trades, mixed.open, mixed.close) == ("*", 2, 100.0, 110.0)
    assert mixed.vwap == pytest.approx((100.0 + 330.0) / 4)
    assert (coinbase.exchange, coinbase.trades, coinbase.vwap) == ("coinbase", 1, 110.0)


async def test_daily_bars_align_to_utc_midnight(store: TickStore) -> None:
    day = 86_400 * SECOND
    await store.write([trade(T0 + day - MINUTE, 1.0, seq=1), trade(T0 + day, 2.0, seq=2)])

    bars = await store.bars(SYMBOL, "1d")

    assert [(b.ts, b.close) for b in bars] == [(T0, 1.0), (T0 + day, 2.0)]


async def test_same_batch_id_twice_stores_one_copy(store: TickStore) -> None:
    batch = [trade(T0 + i * SECOND, 100.0 + i, seq=i) for i in range(5)]

    assert await store.write(batch, batch_id="feed-1:batch-7") == 5
    assert await store.write(batch, batch_id="feed-1:batch-7") == 0
    assert await store.write(batch[:2], batch_id="feed-1:batch-8") == 2

    expected = 5 if _dedups(store) else 7
    assert len(await store.ticks(SYMBOL)) == expected


def _dedups(store: TickStore) -> bool:
    """QuestDB's dedup keys fold re-sent identical ticks; the others keep both copies."""
    return getattr(store, "backend", "") == "questdb"


async def test_empty_batch_writes_nothing(store: TickStore) -> None:
    assert await store.write([]) == 0
    assert await store.write([], batch_id="empty") == 0

    assert await store.ticks(SYMBOL) == []
    assert await store.latest(SYMBOL) is None
    assert await store.bars(SYMBOL, "1m") == []


async def test_a_write_of_50000_ticks_comes_back_complete(store: TickStore) -> None:
    count = 50_000
    batch = [trade(T0 + i * 1_000_000, 100.0 + (i % 100) / 10, 0.5, seq=i) for i in range(count)]

    assert await store.write(batch, batch_id="big") == count

    back = await store.ticks(SYMBOL, limit=count + 1)
    assert len(back) == count
    assert back == list(reversed(batch))
    bars = await store.bars(SYMBOL, "1m")
    assert sum(b.trades for b in bars) == count
    assert sum(b.volume for b in bars) == pytest.approx(count * 0.5)


async def test_health_runs_a_query_and_names_the_backend(store: TickStore) -> None:
    await store.write([trade(T0, 100.0, seq=1)])

    details = await store.health()

    assert details["backend"] in {"duckdb", "postgresql", "questdb"}
    assert details["backend"] == getattr(store, "backend", None)
    assert "table" in details


async def test_a_closed_store_refuses_calls(store: TickStore) -> None:
    await store.close()

    with pytest.raises(TickStoreError):
        await store.health()
    with pytest.raises(TickStoreError):
        await store.write([trade(T0, 1.0)])


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.ticks(SYMBOL, limit=0), ValueError),
        (lambda s: s.ticks(SYMBOL, start=T0 + 1, end=T0), ValueError),
        (lambda s: s.ticks(""), ValueError),
        (lambda s: s.bars(SYMBOL, "7x"), ValueError),
        (lambda s: s.bars(SYMBOL, "1m", limit=-1), ValueError),
        (lambda s: s.write([trade(T0, 1.0), ("not", "a", "tick")]), TypeError),
        (lambda s: s.write([trade(T0, 1.0)], batch_id=""), ValueError),
    ],
)
async def test_bad_arguments_raise_clear_errors(store: TickStore, call, error) -> None:
    with pytest.raises(error):
        await call(store)
