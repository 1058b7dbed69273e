"""AlpacaDataFeed against the local Alpaca stock data server, over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest
import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.fakes.alpaca_data_ws import FakeAlpacaDataServer, bar, quote, trade
from trademk.domain.market import Bar, Tick, TickKind
from trademk.domain.ports import MarketDataFeed
from trademk.engine.clock import LiveClock
from trademk.venues.alpaca.data_feed import AlpacaDataFeed
from trademk.venues.reconnect import ExponentialBackoff

KEY = "PKTEST0000000001"
SECRET = "s3cret-value-never-logged"
T0 = "2021-02-22T15:51:44.208123456Z"
T0_NS = 1_614_009_104_208_123_456


StartFeed = Callable[..., Awaitable["Consumer"]]


def ts(offset_ns: int) -> tuple[str, int]:
    """An RFC 3339 nanosecond timestamp ``offset_ns`` after T0, with its ns value."""
    ns = T0_NS + offset_ns
    return f"2021-02-22T15:51:{ns // 10**9 % 60:02d}.{ns % 10**9:09d}Z", ns


def aapl_trade(trade_id: int) -> dict[str, object]:
    return trade("AAPL", trade_id, 100.0 + trade_id, 10, ts(trade_id * 1000)[0])


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.005)


class Consumer:
    """Drains ``feed.stream()`` in a task and keeps what it yields."""

    def __init__(self, feed: AlpacaDataFeed) -> None:
        self.feed = feed
        self.items: list[Tick | Bar] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in self.feed.stream():
            self.items.append(item)

    def trade_ids(self) -> list[int | None]:
        return [i.seq for i in self.items if isinstance(i, Tick) and i.kind is TickKind.TRADE]

    async def wait_items(self, count: int) -> None:
        await eventually(lambda: len(self.items) >= count)

    async def stop(self) -> None:
        await self.feed.close()
        await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def server() -> AsyncIterator[FakeAlpacaDataServer]:
    async with FakeAlpacaDataServer(KEY, SECRET, replay_last=2, auth_reply_delay=0.02) as fake:
        yield fake


@pytest.fixture
async def start_feed(
    server: FakeAlpacaDataServer,
) -> AsyncIterator[StartFeed]:
    consumers: list[Consumer] = []

    async def start(symbols: tuple[str, ...] = ("AAPL",), **overrides: object) -> Consumer:
        settings: dict[str, object] = {
            "key": KEY,
            "secret": SECRET,
            "clock": LiveClock(),
            "base_url": server.url,
            "silence_timeout": 5.0,
            "backoff": ExponentialBackoff(initial=0.02, maximum=0.1),
            "auth_failure_backoff": 0.5,
            "handshake_timeout": 2.0,
        }
        settings.update(overrides)
        feed = AlpacaDataFeed(**settings)  # type: ignore[arg-type]
        await feed.subscribe(list(symbols))
        consumer = Consumer(feed)
        consumers.append(consumer)
        return consumer

    yield start
    for consumer in consumers:
        await consumer.stop()


async def test_scripted_session_arrives_exactly_once_with_exact_fields(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    consumer = await start_feed(("AAPL", "spy"))
    assert isinstance(consumer.feed, MarketDataFeed)
    await server.wait_subscribed(1)
    t1, t1_ns = ts(0)
    t2, t2_ns = ts(1)
    await server.publish(
        [
            trade("AAPL", 52983525029461, 387.62, 100, t1),
            quote("AAPL", 387.46, 1, 387.67, 1, t2),
            trade("MSFT", 7, 250.0, 5, t1),  # not subscribed: the server must not send it
            bar(
                "SPY",
                "2021-02-22T19:15:00Z",
                388.985,
                389.13,
                388.975,
                389.12,
                49378,
                461,
                389.062639,
            ),
        ],
        batch=2,
    )
    await server.publish([aapl_trade(99)])  # a sentinel: everything before it has arrived
    await eventually(lambda: 99 in consumer.trade_ids())

    received = [
        msgspec.structs.replace(i, received=0) if isinstance(i, Tick) else i for i in consumer.items
    ]
    assert received == [
        Tick("AAPL", "ALPACA", TickKind.TRADE, t1_ns, 387.62, 100.0, seq=52983525029461),
        Tick(
            "AAPL",
            "ALPACA",
            TickKind.QUOTE,
            t2_ns,
            (387.46 + 387.67) / 2,
            bid=387.46,
            bid_size=1.0,
            ask=387.67,
            ask_size=1.0,
        ),
        Bar(
            "SPY",
            "ALPACA",
            "1m",
            1_614_021_300 * 10**9,
            388.985,
            389.13,
            388.975,
            389.12,
            49378.0,
            389.062639,
            trades=461,
        ),
        Tick("AAPL", "ALPACA", TickKind.TRADE, ts(99_000)[1], 199.0, 10.0, seq=99),
    ]
    assert all(i.received > 0 for i in consumer.items if isinstance(i, Tick))
    status = consumer.feed.status()
    assert (status["state"], status["connected"], status["symbols"]) == (
        "running",
        True,
        ["AAPL", "SPY"],
    )
    assert (status["ticks"], status["bars"], status["duplicates"], status["reconnects"]) == (
        3,
        1,
        0,
        0,
    )
    assert status["subscriptions"]["trades"] == ["AAPL", "SPY"]


async def test_handshake_waits_for_each_answer_in_order(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    await start_feed(("AAPL",), channels=("trades", "bars"))
    record = await server.wait_subscribed(1)
    steps = [(who, json.loads(text)) for who, text in record.transcript]
    assert steps[:5] == [
        ("server", [{"T": "success", "msg": "connected"}]),
        ("client", {"action": "auth", "key": KEY, "secret": SECRET}),
        ("server", [{"T": "success", "msg": "authenticated"}]),
        ("client", {"action": "subscribe", "trades": ["AAPL"], "bars": ["AAPL"]}),
        ("server", [{"T": "subscription", **record.subscriptions}]),
    ]


async def test_fake_rejects_clients_that_do_not_wait_for_authenticated(
    server: FakeAlpacaDataServer,
) -> None:
    async with connect(f"{server.url}/v2/iex") as naive:
        assert json.loads(await naive.recv()) == [{"T": "success", "msg": "connected"}]
        await naive.send(json.dumps({"action": "subscribe", "trades": ["AAPL"]}))
        assert json.loads(await naive.recv()) == [
            {"T": "error", "code": 401, "msg": "not authenticated"}
        ]
    async with connect(f"{server.url}/v2/iex") as hasty:
        await hasty.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
        # The first frame after sending auth is still the greeting, not the auth answer.
        assert json.loads(await hasty.recv()) == [{"T": "success", "msg": "connected"}]
        assert json.loads(await hasty.recv()) == [{"T": "success", "msg": "authenticated"}]
    async with connect(f"{server.url}/v2/iex") as pipelining:
        await pipelining.recv()
        await pipelining.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
        await pipelining.send(json.dumps({"action": "subscribe", "trades": ["AAPL"]}))
        assert json.loads(await pipelining.recv())[0]["msg"] == "authenticated"
        assert json.loads(await pipelining.recv())[0]["code"] == 401
    assert server.active() == []


async def test_wrong_credentials_show_in_status_and_are_not_retried_hot(
    server: FakeAlpacaDataServer, start_feed: StartFeed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # even wire-level debug logging must not leak the secret
    window = 0.5
    with structlog.testing.capture_logs() as logs:
        consumer = await start_feed(secret="wrong-" + SECRET, auth_failure_backoff=window)
        await eventually(lambda: consumer.feed.status()["reason"] == "auth failed (402)")
        await server.wait_for(lambda: len(server.connections) >= 3)
        status = consumer.feed.status()
        await consumer.stop()
    assert (status["state"], status["connected"], status["last_error"]) == (
        "degraded",
        False,
        "auth failed (402)",
    )
    opened = [c.opened_at for c in server.connections]
    assert all(later - earlier >= window for earlier, later in itertools.pairwise(opened))
    assert all(not c.authenticated and c.closed for c in server.connections)
    assert any(entry.get("code") == 402 for entry in logs)
    assert SECRET not in repr(logs) and SECRET not in repr(status)
    # websockets abridges long frames in its debug log, so look for the secret's tail too.
    feed_log = "\n".join(r.getMessage() for r in caplog.records if r.name != "websockets.server")
    assert SECRET not in feed_log and SECRET[-12:] not in feed_log


async def test_connection_limit_shows_in_status_and_recovers_when_released(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    window = 0.5
    holder = await connect(f"{server.url}/v2/iex")
    await holder.recv()
    await holder.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
    assert json.loads(await holder.recv())[0]["msg"] == "authenticated"

    consumer = await start_feed(auth_failure_backoff=window)
    await eventually(lambda: consumer.feed.status()["reason"] == "connection limit exceeded (406)")
    await server.wait_for(lambda: len(server.connections) >= 3)
    assert consumer.feed.status()["state"] == "degraded"
    opened = [c.opened_at for c in server.connections[1:]]
    assert all(later - earlier >= window for earlier, later in itertools.pairwise(opened))

    await holder.close()
    await server.wait_subscribed(1)
    await server.publish([aapl_trade(1)])
    await consumer.wait_items(1)
    status = consumer.feed.status()
    assert (status["state"], status["reason"], status["connected"]) == ("running", "", True)


async def test_drop_mid_stream_reconnects_resubscribes_and_drops_replayed_trades(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    consumer = await start_feed(("AAPL",))
    first = await server.wait_subscribed(1)
    await server.publish([aapl_trade(1), aapl_trade(2), aapl_trade(3)], batch=1)
    await consumer.wait_items(3)

    assert server.drop_connections() == 1
    second = await server.wait_subscribed(2)  # the server replays trades 2 and 3 to it
    await server.publish([aapl_trade(4)])
    await eventually(lambda: 4 in consumer.trade_ids())

    assert consumer.trade_ids() == [1, 2, 3, 4]
    assert second.received[1] == first.received[1]  # the same subscribe, all symbols
    status = consumer.feed.status()
    assert (status["duplicates"], status["reconnects"], status["state"]) == (2, 1, "running")


async def test_silent_connection_is_replaced(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    consumer = await start_feed(silence_timeout=0.3)
    await server.wait_subscribed(1)
    await server.publish([aapl_trade(1)])
    await consumer.wait_items(1)
    server.silence_connections()
    await server.publish([aapl_trade(2)])  # swallowed by the silent connection

    await server.wait_subscribed(2)
    await server.publish([aapl_trade(3)])
    await eventually(lambda: 3 in consumer.trade_ids())
    assert consumer.trade_ids() == [1, 2, 3]  # trade 2 came back through the replay
    assert "silent" in consumer.feed.status()["last_error"]
    assert server.connections[0].closed


async def test_malformed_frames_are_counted_and_skipped(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    consumer = await start_feed()
    await server.wait_subscribed(1)
    await server.publish([aapl_trade(1)])
    for frame in ("not json", '{"T":"t"}', '[{"T":"t","S":"AAPL"}]'):
        await server.send_raw(frame)
    await server.publish([aapl_trade(2)])
    await eventually(lambda: 2 in consumer.trade_ids())

    assert consumer.trade_ids() == [1, 2]
    status = consumer.feed.status()
    assert (status["parse_errors"], status["reconnects"]) == (3, 0)
    assert len(server.connections) == 1


async def test_error_frame_mid_stream_is_recorded_and_streaming_continues(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    consumer = await start_feed()
    await server.wait_subscribed(1)
    await server.send_error(500)
    await server.publish([aapl_trade(1)])
    await consumer.wait_items(1)
    assert consumer.feed.status()["last_error"] == "internal error (500)"
    assert len(server.connections) == 1


async def test_server_restart_on_the_same_port_is_survived(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    consumer = await start_feed()
    await server.wait_subscribed(1)
    await server.stop()
    await eventually(lambda: consumer.feed.status()["state"] == "degraded")
    await server.start()
    await server.wait_subscribed(2)
    await server.publish([aapl_trade(1)])
    await consumer.wait_items(1)
    assert consumer.feed.status()["reconnects"] >= 1


async def test_symbols_subscribed_while_streaming_go_live(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    consumer = await start_feed(("AAPL",), channels=("trades",))
    record = await server.wait_subscribed(1)
    await consumer.feed.subscribe(["msft"])
    await server.wait_for(lambda: "MSFT" in record.subscriptions["trades"])
    await server.publish([trade("MSFT", 1, 250.0, 5, T0)])
    await consumer.wait_items(1)
    assert record.received[-1] == {"action": "subscribe", "trades": ["MSFT"]}
    assert consumer.items[0].symbol == "MSFT"


async def test_close_ends_the_stream_during_the_auth_failure_wait(
    server: FakeAlpacaDataServer, start_feed: StartFeed
) -> None:
    consumer = await start_feed(secret="wrong", auth_failure_backoff=3600.0)
    await eventually(lambda: consumer.feed.status()["reason"] == "auth failed (402)")
    await consumer.stop()
    assert consumer.task.done() and consumer.feed.status()["state"] == "stopped"
    assert len(server.connections) == 1


async def test_insufficient_subscription_for_sip_is_reported(
    start_feed: StartFeed,
) -> None:
    async with FakeAlpacaDataServer(KEY, SECRET, allowed_feeds=("iex",)) as sip_less:
        consumer = await start_feed(base_url=sip_less.url, feed="sip")
        await eventually(
            lambda: consumer.feed.status()["reason"] == "insufficient subscription (409)"
        )
        assert sip_less.connections[0].feed == "sip"
        await consumer.stop()


async def test_fake_enforces_auth_timeout_syntax_second_auth_and_paths() -> None:
    async with FakeAlpacaDataServer(KEY, SECRET, auth_timeout=0.2, symbol_limit=1) as fake:
        async with connect(f"{fake.url}/v2/sip") as idle:
            await idle.recv()
            assert json.loads(await idle.recv())[0]["code"] == 404
        async with connect(f"{fake.url}/v2/iex") as client:
            await client.recv()
            await client.send("{not json")
            assert json.loads(await client.recv())[0]["code"] == 400
            await client.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
            await client.recv()
            await client.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
            assert json.loads(await client.recv())[0]["code"] == 403
            await client.send(json.dumps({"action": "subscribe", "trades": "AAPL"}))
            assert json.loads(await client.recv())[0]["code"] == 400
            await client.send(json.dumps({"action": "subscribe", "trades": ["AAPL", "MSFT"]}))
            assert json.loads(await client.recv())[0]["code"] == 405
        with pytest.raises(InvalidStatus):
            await connect(f"{fake.url}/v1beta3/crypto/us")


async def test_feed_settings_and_symbols_are_validated() -> None:
    clock = LiveClock()
    with pytest.raises(ValueError, match="feed"):
        AlpacaDataFeed(KEY, SECRET, clock=clock, feed="otc")
    with pytest.raises(ValueError, match="base_url"):
        AlpacaDataFeed(KEY, SECRET, clock=clock, base_url="https://stream.data.alpaca.markets")
    with pytest.raises(ValueError, match="channels"):
        AlpacaDataFeed(KEY, SECRET, clock=clock, channels=("trades", "news"))
    with pytest.raises(ValueError, match="key"):
        AlpacaDataFeed("", SECRET, clock=clock)
    feed = AlpacaDataFeed(KEY, SECRET, clock=clock, feed="sip")
    assert feed.url == "wss://stream.data.alpaca.markets/v2/sip"
    with pytest.raises(TypeError):
        await feed.subscribe("AAPL")
    with pytest.raises(ValueError, match="symbol"):
        await feed.subscribe(["AAPL", " "])
