"""BinanceFeed against the local Binance protocol server, over real sockets."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from decimal import Decimal
from typing import Any, cast

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.fakes.binance_ws import FakeBinanceServer
from trademk.domain.market import NANOS_PER_MILLI, Tick, TickKind
from trademk.domain.ports import MarketDataFeed
from trademk.venues.binance.feed import BinanceFeed, combined_stream_url, plan_connections
from trademk.venues.reconnect import ExponentialBackoff

CLOCK_START_NS = 1_800_000_000_000_000_000
CLOCK_STEP_NS = 1_000


class StepClock:
    """Each reading is ``CLOCK_STEP_NS`` later than the previous one."""

    def __init__(self) -> None:
        self.readings = 0

    def now_ns(self) -> int:
        self.readings += 1
        return CLOCK_START_NS + self.readings * CLOCK_STEP_NS

    def monotonic_ns(self) -> int:
        return self.now_ns()


class Consumer:
    """Drains ``feed.stream()`` into a list in a background task."""

    def __init__(self, feed: BinanceFeed) -> None:
        self.ticks: list[Tick] = []
        self.task = asyncio.create_task(self._consume(feed))

    async def _consume(self, feed: BinanceFeed) -> None:
        async for tick in feed.stream():
            self.ticks.append(tick)

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        await wait_until(lambda: len(self.ticks) >= count, within)


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        # Polling: feed status and tick lists signal no change events.
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[FakeBinanceServer]:
    async with FakeBinanceServer() as fake:
        yield fake


@pytest.fixture
async def make_feed() -> AsyncIterator[Callable[..., BinanceFeed]]:
    feeds: list[BinanceFeed] = []

    def factory(url: str, **kwargs: Any) -> BinanceFeed:
        kwargs.setdefault("clock", StepClock())
        kwargs.setdefault("silence_timeout", 5.0)
        kwargs.setdefault(
            "backoff", ExponentialBackoff(initial=0.01, maximum=0.05, rng=random.Random(7))
        )
        feed = BinanceFeed(url, **kwargs)
        feeds.append(feed)
        return feed

    yield factory
    for feed in feeds:
        await feed.close()


def expected_trade(data: dict[str, Any]) -> tuple[Any, ...]:
    return (data["s"], TickKind.TRADE, data["T"] * NANOS_PER_MILLI, float(data["p"]),
            float(data["q"]), data["t"])  # fmt: skip


def observed_trade(tick: Tick) -> tuple[Any, ...]:
    return (tick.symbol, tick.kind, tick.ts, tick.price, tick.qty, tick.seq)


def expected_quote(data: dict[str, Any]) -> tuple[Any, ...]:
    return (data["s"], TickKind.QUOTE, float(data["b"]), float(data["B"]), float(data["a"]),
            float(data["A"]), data["u"])  # fmt: skip


def observed_quote(tick: Tick) -> tuple[Any, ...]:
    return (tick.symbol, tick.kind, tick.bid, tick.bid_size, tick.ask, tick.ask_size, tick.seq)


def observed(tick: Tick) -> tuple[Any, ...]:
    return observed_trade(tick) if tick.kind is TickKind.TRADE else observed_quote(tick)


def publish_session(
    server: FakeBinanceServer, symbols: list[str], count: int
) -> list[tuple[Any, ...]]:
    """``count`` trades and ``count`` quotes round-robin over symbols; expected tuples in order."""
    expected: list[tuple[Any, ...]] = []
    for i in range(count):
        symbol = symbols[i % len(symbols)]
        base = Decimal(100 * (i % len(symbols) + 1)) + Decimal(i) / 100
        trade = server.trade(symbol, base, Decimal("0.5") + Decimal(i) / 1000)
        expected.append(expected_trade(trade))
        quote = server.book_ticker(symbol, base - 1, Decimal(i + 1), base + 1, Decimal(i + 2))
        expected.append(expected_quote(quote))
    return expected


async def fence(server: FakeBinanceServer, consumer: Consumer, symbol: str) -> None:
    """Publish one more trade and wait for it: everything sent before has been handled."""
    before = len(consumer.ticks)
    data = server.trade(symbol, "1.0", "1.0")
    await consumer.wait_for(before + 1)
    assert observed_trade(consumer.ticks[-1]) == expected_trade(data)
    consumer.ticks.pop()


async def test_feed_satisfies_market_data_feed_protocol(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    assert isinstance(make_feed(server.url), MarketDataFeed)


async def test_scripted_session_arrives_exactly_once_with_correct_fields(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    clock = StepClock()
    feed = make_feed(server.url, clock=clock, symbols=["BTCUSDT", "ethusdt", "BNBUSDT"])
    consumer = Consumer(feed)
    await server.wait_for_connections(1)
    assert server.connections[0].streams == (
        "btcusdt@trade", "btcusdt@bookTicker", "ethusdt@trade", "ethusdt@bookTicker",
        "bnbusdt@trade", "bnbusdt@bookTicker",
    )  # fmt: skip

    expected = publish_session(server, ["BTCUSDT", "ETHUSDT", "BNBUSDT"], 200)
    await consumer.wait_for(400)
    await fence(server, consumer, "BTCUSDT")

    assert [observed(tick) for tick in consumer.ticks] == expected
    assert all(tick.exchange == "BINANCE" for tick in consumer.ticks)
    received = [tick.received for tick in consumer.ticks]
    assert received == sorted(set(received))  # one clock reading per frame, in order
    assert all(CLOCK_START_NS < ns <= CLOCK_START_NS + clock.readings * CLOCK_STEP_NS
               for ns in received)  # fmt: skip
    quotes = [tick for tick in consumer.ticks if tick.kind is TickKind.QUOTE]
    assert len(quotes) == 200
    assert all(quote.ts == quote.received for quote in quotes)
    assert all(quote.price == (quote.bid + quote.ask) / 2 for quote in quotes)  # type: ignore[operator]

    status = feed.status()
    assert status["connected"] is True
    assert status["state"] == "running"
    assert status["symbols"] == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert (status["messages"], status["ticks"]) == (401, 401)
    assert (status["duplicates"], status["parse_errors"], status["reconnects"]) == (0, 0, 0)
    assert status["last_message_ns"] == consumer.ticks[-1].received + CLOCK_STEP_NS


async def test_drop_mid_stream_reconnects_resubscribes_and_deduplicates_replay(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    feed = make_feed(server.url, symbols=["BTCUSDT", "ETHUSDT"])
    consumer = Consumer(feed)
    await server.wait_for_connections(1)
    first = publish_session(server, ["BTCUSDT", "ETHUSDT"], 50)
    await consumer.wait_for(100)

    server.replay_last = 400  # the new connection re-sends everything: overlap plus what was lost
    server.drop_connections(after_frames=60)
    rest = publish_session(server, ["BTCUSDT", "ETHUSDT"], 150)
    await server.wait_for_connections(2)
    await consumer.wait_for(400)
    server.replay_last = 0
    await fence(server, consumer, "ETHUSDT")

    assert [observed(tick) for tick in consumer.ticks] == first + rest
    assert server.connections[1].streams == server.connections[0].streams
    assert server.connections[0].closed
    status = feed.status()
    assert status["reconnects"] >= 1
    assert status["duplicates"] >= 100  # replayed events the consumer had already seen
    assert status["connected"] is True
    assert status["state"] == "running"


async def test_silent_connection_is_detected_and_replaced(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    feed = make_feed(server.url, symbols=["BTCUSDT"], silence_timeout=0.3)
    consumer = Consumer(feed)
    await server.wait_for_connections(1)
    server.trade("BTCUSDT", "10", "1")
    await consumer.wait_for(1)

    server.go_silent()
    server.trade("BTCUSDT", "11", "1")  # not sent on the silent connection
    await wait_until(lambda: feed.status()["state"] == "degraded", within=3.0)
    assert "silent" in feed.status()["reason"]
    await server.wait_for_connections(2, within=3.0)
    await server.wait_until(lambda: server.connections[0].closed)

    data = server.trade("BTCUSDT", "12", "1")
    await consumer.wait_for(2)
    assert observed_trade(consumer.ticks[-1]) == expected_trade(data)
    assert feed.status()["reconnects"] >= 1
    assert "silent" in feed.status()["last_error"]


async def test_malformed_frames_are_counted_and_skipped(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    feed = make_feed(server.url, symbols=["BTCUSDT"])
    consumer = Consumer(feed)
    await server.wait_for_connections(1)

    before = server.trade("BTCUSDT", "10", "1")
    server.send_raw("this is not json")
    server.send_raw('{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT"}}')
    server.send_raw('{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"x"}}')
    server.send_raw('{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT"}}')
    after = server.trade("BTCUSDT", "11", "2")
    await consumer.wait_for(2)
    await fence(server, consumer, "BTCUSDT")

    assert [observed(tick) for tick in consumer.ticks] == [
        expected_trade(before),
        expected_trade(after),
    ]
    status = feed.status()
    assert status["parse_errors"] == 3
    assert status["ignored_frames"] == 1
    assert status["messages"] == 7
    assert "malformed" in status["last_error"]
    assert status["reconnects"] == 0
    assert len(server.connections) == 1


async def test_feed_recovers_after_server_restart_on_same_port(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    feed = make_feed(server.url, symbols=["BTCUSDT"])
    consumer = Consumer(feed)
    await server.wait_for_connections(1)
    first = server.trade("BTCUSDT", "10", "1")
    await consumer.wait_for(1)
    port = server.port

    await server.stop()
    await wait_until(lambda: feed.status()["state"] == "degraded")
    assert feed.status()["connected"] is False
    await wait_until(lambda: feed.status()["reconnects"] >= 2)  # refused attempts keep coming
    await server.start()
    assert server.port == port
    await server.wait_for_connections(2)
    await wait_until(lambda: feed.connected)

    second = server.trade("BTCUSDT", "11", "1")
    await consumer.wait_for(2)
    assert [observed(tick) for tick in consumer.ticks] == [
        expected_trade(first),
        expected_trade(second),
    ]
    assert feed.status()["state"] == "running"


async def test_more_streams_than_one_connection_holds_open_several(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"]
    feed = make_feed(server.url, streams_per_connection=4)
    await feed.subscribe(symbols)
    consumer = Consumer(feed)
    await server.wait_for_connections(3)
    await wait_until(lambda: feed.connected)

    requested = sorted(record.streams for record in server.connections)
    assert requested == [
        ("aaausdt@trade", "aaausdt@bookTicker", "bbbusdt@trade", "bbbusdt@bookTicker"),
        ("cccusdt@trade", "cccusdt@bookTicker", "dddusdt@trade", "dddusdt@bookTicker"),
        ("eeeusdt@trade", "eeeusdt@bookTicker"),
    ]
    published = {symbol: expected_trade(server.trade(symbol, "5", "1")) for symbol in symbols}
    await consumer.wait_for(5)
    assert sorted(observed(tick) for tick in consumer.ticks) == sorted(published.values())
    assert feed.status()["connections"] == 3
    assert len(server.connections) == 3


async def test_subscribe_while_connected_reconnects_with_new_streams(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    feed = make_feed(server.url, symbols=["BTCUSDT"])
    consumer = Consumer(feed)
    await server.wait_for_connections(1)
    await wait_until(lambda: feed.connected)

    await feed.subscribe(["ETHUSDT", "btcusdt"])
    await server.wait_for_connections(2)
    await server.wait_until(lambda: server.connections[0].closed)
    assert server.connections[1].streams == (
        "ethusdt@trade", "ethusdt@bookTicker", "btcusdt@trade", "btcusdt@bookTicker",
    )  # fmt: skip
    data = server.trade("ETHUSDT", "2000", "0.1")
    await consumer.wait_for(1)
    assert observed_trade(consumer.ticks[0]) == expected_trade(data)
    assert feed.status()["symbols"] == ["ETHUSDT", "BTCUSDT"]


async def test_reader_keeps_answering_pings_while_the_consumer_is_idle(
    make_feed: Callable[..., BinanceFeed],
) -> None:
    async with FakeBinanceServer(ping_interval=0.05, ping_timeout=0.3) as server:
        feed = make_feed(server.url, symbols=["BTCUSDT"])
        ticks = cast(AsyncGenerator[Tick, None], feed.stream())
        first = asyncio.ensure_future(anext(ticks))  # starts the feed, then nobody reads
        await server.wait_for_connections(1)
        published = [expected_trade(server.trade("BTCUSDT", "10", "1")) for _ in range(100)]
        # A stalled reader would stop answering pings and be dropped within 0.35 s.
        await asyncio.sleep(0.8)

        assert len(server.connections) == 1
        assert not server.connections[0].closed
        assert feed.status()["reconnects"] == 0
        received = [await first] + [await anext(ticks) for _ in range(99)]
        assert [observed_trade(tick) for tick in received] == published
        await ticks.aclose()


async def test_connection_is_replaced_before_its_maximum_age(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    feed = make_feed(server.url, symbols=["BTCUSDT"], max_connection_age=0.2)
    consumer = Consumer(feed)
    await server.wait_for_connections(3, within=3.0)

    assert server.connections[0].close_code == 1000  # closed by the feed, cleanly
    assert "maximum connection age" in feed.status()["last_error"]
    await wait_until(lambda: feed.connected)
    data = server.trade("BTCUSDT", "3", "1")
    await consumer.wait_for(1)
    assert observed_trade(consumer.ticks[0]) == expected_trade(data)


async def test_close_ends_the_stream_promptly(
    server: FakeBinanceServer, make_feed: Callable[..., BinanceFeed]
) -> None:
    feed = make_feed(server.url, symbols=["BTCUSDT"])
    consumer = Consumer(feed)
    await server.wait_for_connections(1)

    await feed.close()
    await asyncio.wait_for(consumer.task, timeout=2.0)
    await server.wait_until(lambda: server.connections[0].closed)
    status = feed.status()
    assert (status["state"], status["connected"]) == ("stopped", False)


def test_plan_connections_respects_stream_and_url_limits() -> None:
    base = "wss://stream.binance.com:9443"
    symbols = [f"SYM{i:04d}USDT" for i in range(1000)]

    by_streams = plan_connections(symbols, base, 1024, 10**6)
    assert [len(plan) for plan in by_streams] == [1024, 976]

    by_url = plan_connections(symbols, base, 1024, 8000)
    assert all(len(combined_stream_url(base, plan)) <= 8000 for plan in by_url)
    assert [name for plan in by_url for name in plan] == [
        name for plan in by_streams for name in plan
    ]
    assert all(plan[0].endswith("@trade") and plan[-1].endswith("@bookTicker") for plan in by_url)


def test_constructor_and_subscribe_reject_bad_input() -> None:
    clock = StepClock()
    with pytest.raises(ValueError, match="ws://"):
        BinanceFeed("http://example.com", clock=clock)
    with pytest.raises(ValueError, match="streams_per_connection"):
        BinanceFeed(clock=clock, streams_per_connection=1025)
    with pytest.raises(ValueError, match="symbol"):
        BinanceFeed(clock=clock, symbols=["BTC/USDT"])
    with pytest.raises(TypeError):
        BinanceFeed(clock=clock, symbols="BTCUSDT")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ws/btcusdt@trade", 400),
        ("/stream", 400),
        ("/stream?streams=BTCUSDT@trade", 400),
        ("/stream?streams=btcusdt@nonsense", 400),
        ("/stream?streams=" + "/".join(f"s{i:05d}@trade" for i in range(620)), 414),
    ],
    ids=["raw-path", "no-streams", "uppercase", "unknown-type", "url-too-long"],
)
async def test_fake_server_rejects_bad_handshakes_with_http_errors(
    server: FakeBinanceServer, path: str, status: int
) -> None:
    with pytest.raises(InvalidStatus) as raised:
        async with connect(server.url + path):
            pass
    assert raised.value.response.status_code == status
    assert server.rejected[-1] == (path, status)
    assert server.connections == []


async def test_fake_server_drops_a_client_that_does_not_pong() -> None:
    async with FakeBinanceServer(ping_interval=0.05, ping_timeout=0.1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET /stream?streams=btcusdt@trade HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        response = await reader.readuntil(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101")

        received = await asyncio.wait_for(reader.read(), timeout=3.0)  # to EOF, never ponging
        writer.close()
        assert received.startswith(b"\x89\x04")  # a ping frame with a 4-byte payload first
        assert (
            b"\x88" + bytes([2 + len(b"keepalive ping timeout")]) + (1011).to_bytes(2) in received
        )
        await server.wait_until(lambda: server.connections[0].closed)
