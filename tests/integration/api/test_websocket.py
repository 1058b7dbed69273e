"""WebSocket /ws over a real socket: auth, protocol, live channels, slow clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.integration.api.live_server import (
    LiveApi,
    live_api,
    receive,
    receive_type,
    send,
    slow_connection,
    subscribe,
    wait_until,
)
from trademk.domain.market import NANOS_PER_SECOND
from trademk.engine.bus import InProcessBus, MessageBus
from trademk.messaging.redis_bus import RedisEventBus
from trademk.security.roles import Role, Scope
from trademk.wiring.live import WebSocketOptions

pytestmark = pytest.mark.timeout(60)
MINUTE = 60 * NANOS_PER_SECOND


@pytest.fixture
async def api(tmp_path: Path) -> Any:
    async with live_api(tmp_path) as running:
        yield running


async def viewer(api: LiveApi) -> ClientConnection:
    _, token = await api.user_token(Role.VIEWER)
    return await connect(api.ws_url(token=token))


async def test_handshakes_without_valid_credentials_are_refused(api: LiveApi) -> None:
    for url, headers in (
        (api.ws_url(), {}),
        (api.ws_url(token="not-a-token"), {}),
        (api.ws_url(), {"Authorization": "Basic dXNlcjpwYXNz"}),
    ):
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers=headers)
        assert refused.value.response.status_code == 403
    assert api.platform.live.connections == set()


async def test_token_in_header_query_or_an_api_key_is_accepted(api: LiveApi) -> None:
    _, token = await api.user_token(Role.VIEWER)
    key = await api.api_key(Role.VIEWER, Scope.READ)
    attempts = [
        (api.ws_url(), {"Authorization": f"Bearer {token}"}),
        (api.ws_url(token=token), {}),
        (api.ws_url(access_token=token), {}),
        (api.ws_url(), {"X-API-Key": key}),
    ]
    for url, headers in attempts:
        async with connect(url, additional_headers=headers) as ws:
            await send(ws, {"action": "ping", "id": 7})
            pong = await receive(ws)
            assert pong["type"] == "pong" and pong["id"] == 7


async def test_subscribe_delivers_ticks_and_unsubscribe_stops_them(api: LiveApi) -> None:
    async with await viewer(api) as ws:
        ack = await subscribe(ws, "ticks:btcusdt", "orders")
        assert ack["channels"] == ["ticks:BTCUSDT", "orders"]
        assert ack["active"] == ["orders", "ticks:BTCUSDT"]
        api.trade("BTCUSDT", 65_000.5, seq=1)
        api.trade("ETHUSDT", 3_000.0, seq=2)  # not subscribed
        message = await receive(ws)
        assert message["type"] == "tick" and message["channel"] == "ticks:BTCUSDT"
        assert message["data"]["price"] == 65_000.5 and message["data"]["seq"] == 1
        assert message["data"]["time"].endswith("+00:00")

        await send(ws, {"action": "unsubscribe", "channels": ["ticks:BTCUSDT"]})
        left = await receive(ws)
        assert left == {"type": "unsubscribed", "channels": ["ticks:BTCUSDT"], "active": ["orders"]}
        api.trade("BTCUSDT", 65_001.0, seq=3)
        await send(ws, {"action": "ping"})
        assert (await receive(ws))["type"] == "pong"  # no tick came before it


BAD_INPUT = [
    ("not json", "not valid JSON"),
    ("[1, 2]", "send a JSON object"),
    ('{"action": "dance"}', "unknown action 'dance'"),
    ('{"action": "subscribe"}', '"channels" must be a non-empty list'),
    ('{"action": "subscribe", "channels": []}', '"channels" must be a non-empty list'),
    ('{"action": "subscribe", "channels": ["weather"]}', "unknown channel 'weather'"),
    ('{"action": "subscribe", "channels": ["ticks:NOPEUSDT"]}', "unknown symbol 'NOPEUSDT'"),
    ('{"action": "subscribe", "channels": ["bars:BTCUSDT:7m"]}', "bars come in 1m"),
    ('{"action": "subscribe", "channels": [42]}', "non-empty string"),
    ('{"action": "unsubscribe", "channels": "orders"}', '"channels" must be a non-empty list'),
]


async def test_bad_input_gets_an_error_and_the_connection_stays_open(api: LiveApi) -> None:
    async with await viewer(api) as ws:
        for raw, message in BAD_INPUT:
            await ws.send(raw)
            error = await receive(ws)
            assert error["type"] == "error" and message in error["message"], (raw, error)
        await ws.send(b'{"action": "ping", "id": "binary frames work too"}')
        pong = await receive(ws)
        assert pong["type"] == "pong" and pong["id"] == "binary frames work too"


async def test_a_bad_channel_in_a_list_subscribes_none_of_them(api: LiveApi) -> None:
    async with await viewer(api) as ws:
        await send(ws, {"action": "subscribe", "channels": ["orders", "nope"]})
        assert (await receive(ws))["type"] == "error"
        await subscribe(ws, "fills")
        session = next(iter(api.platform.live.connections))
        assert session.subscription.topics == frozenset({"fills"})


async def test_heartbeats_arrive_every_configured_interval(tmp_path: Path) -> None:
    options = WebSocketOptions(heartbeat_seconds=0.1)
    async with live_api(tmp_path, options=options) as api, await viewer(api) as ws:
        beats: list[dict[str, Any]] = []
        while len(beats) < 3:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            beats.append(message)
        assert {beat["type"] for beat in beats} == {"heartbeat"}
        assert all(beat["ts"].endswith("+00:00") for beat in beats)


async def test_closed_one_minute_bars_arrive_on_their_channel(api: LiveApi) -> None:
    start = (api.platform.clock.now_ns() // MINUTE) * MINUTE
    async with await viewer(api) as ws:
        await subscribe(ws, "bars:BTCUSDT:1m")
        for offset, price in ((1, 100.0), (20 * NANOS_PER_SECOND, 110.0), (40, 90.0)):
            api.trade("BTCUSDT", price, ts=start + offset)
        api.trade("BTCUSDT", 95.0, ts=start + MINUTE + 1)
        bar = await receive(ws)
    assert bar["type"] == "bar" and bar["channel"] == "bars:BTCUSDT:1m"
    data = bar["data"]
    assert (data["ts"], data["open"], data["high"], data["low"], data["close"]) == (
        start,
        100.0,
        110.0,
        90.0,
        90.0,
    )
    assert data["trades"] == 3 and data["interval"] == "1m"


async def test_orders_fills_positions_and_portfolio_reach_subscribers(api: LiveApi) -> None:
    _, token = await api.user_token(Role.TRADER)
    api.platform.live.portfolio_interval = 0.05
    async with await viewer(api) as ws:
        await subscribe(ws, "orders", "fills", "positions", "portfolio")
        first = await receive_type(ws, "portfolio")
        assert first["data"]["cash"] == "100000" and first["data"]["open_positions"] == 0
        api.quote("BTCUSDT", bid=64_990.0, ask=65_010.0)
        response = await api.http.post(
            "/api/v1/trading/signal",
            json={"symbol": "BTCUSDT", "side": "buy", "qty": "0.01"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 202, response.text
        cid = response.json()["client_order_id"]
        seen: dict[str, list[dict[str, Any]]] = {}
        async with asyncio.timeout(10):
            while not {"order", "fill", "position"} <= seen.keys() or not _filled(seen, cid):
                message = await receive(ws)
                seen.setdefault(message["type"], []).append(message)
            later = await receive_type(ws, "portfolio")
    assert seen["fill"][0]["data"]["client_order_id"] == cid
    assert seen["position"][0]["data"]["symbol"] == "BTCUSDT"
    assert later["data"]["open_positions"] == 1
    assert later["data"]["cash"] != "100000"


def _filled(seen: dict[str, list[dict[str, Any]]], cid: str) -> bool:
    return any(
        m["data"]["client_order_id"] == cid and m["data"]["status"] == "filled"
        for m in seen.get("order", [])
    )


async def test_connected_clients_are_counted_in_the_metrics_gauge(api: LiveApi) -> None:
    registry = api.platform.metrics.registry

    def gauge() -> float | None:
        return registry.get_sample_value("trademk_websocket_clients")

    async with await viewer(api) as one, await viewer(api) as two:
        for ws in (one, two):
            await send(ws, {"action": "ping"})
            await receive(ws)
        assert gauge() == 2.0
    await wait_until(lambda: gauge() == 0.0)


BURST = 5_000
CHUNK = 100
CAPACITY = 200


async def test_a_slow_client_loses_only_its_own_oldest_messages(tmp_path: Path) -> None:
    """Acceptance: the fast client gets the whole burst in order; the slow one is told
    how many it missed; the server holds at most CAPACITY messages for it."""
    options = WebSocketOptions(heartbeat_seconds=60.0, queue_capacity=CAPACITY)
    async with live_api(tmp_path, options=options, send_buffer=16_384) as api:
        fast_email, fast_token = await api.user_token(Role.VIEWER)
        slow_email, slow_token = await api.user_token(Role.VIEWER)
        fast = await connect(api.ws_url(token=fast_token))
        slow = await slow_connection(api, slow_token)
        await subscribe(fast, "ticks:BTCUSDT")
        await subscribe(slow, "ticks:BTCUSDT")
        fast_queue = api.session_of(fast_email).subscription
        slow_queue = api.session_of(slow_email).subscription

        fast_got: list[int] = []
        fast_other: list[dict[str, Any]] = []

        async def read_fast() -> None:
            while len(fast_got) < BURST:
                message = await receive(fast, within=10)
                if message["type"] == "tick":
                    fast_got.append(message["data"]["seq"])
                else:
                    fast_other.append(message)

        reader = asyncio.create_task(read_fast())
        slow_peak = 0
        for first in range(0, BURST, CHUNK):
            for seq in range(first, first + CHUNK):
                api.trade("BTCUSDT", 60_000.0 + seq, seq=seq)
            slow_peak = max(slow_peak, slow_queue.pending())
            # A feed's pace: the next chunk comes once the fast client has kept up.
            await wait_until(lambda: fast_queue.pending() == 0)
        await asyncio.wait_for(reader, 20)
        slow_peak = max(slow_peak, slow_queue.pending())

        slow_got: list[int] = []
        slow_dropped: list[int] = []
        async with asyncio.timeout(20):
            while not slow_got or slow_got[-1] != BURST - 1:
                message = await receive(slow)
                if message["type"] == "dropped":
                    slow_dropped.append(message["count"])
                elif message["type"] == "tick":
                    slow_got.append(message["data"]["seq"])
        await fast.close()
        await slow.close()

    assert fast_got == list(range(BURST))
    assert fast_other == []
    assert slow_dropped and all(count > 0 for count in slow_dropped)
    assert slow_got == sorted(slow_got) and len(set(slow_got)) == len(slow_got)
    assert len(slow_got) + sum(slow_dropped) == BURST
    assert 0 < slow_peak <= CAPACITY


async def test_events_published_in_another_process_reach_clients_through_redis(
    tmp_path: Path, redis_url: str, unique_name: str
) -> None:
    async with live_api(tmp_path) as api:
        local = api.platform.bus
        assert isinstance(local, InProcessBus)
        clients = [aioredis.from_url(redis_url), aioredis.from_url(redis_url)]
        here = RedisEventBus(clients[0], local, prefix=unique_name, origin="api", block_ms=50)
        worker = RedisEventBus(clients[1], prefix=unique_name, origin="worker", block_ms=50)
        await here.start()
        await worker.start()
        api.platform.bus = cast("MessageBus", here)
        try:
            async with await viewer(api) as ws:
                await subscribe(ws, "orders", "strategies")
                worker.publish("orders", {"client_order_id": "w-1", "status": "filled"})
                worker.publish("strategies", {"kind": "started", "strategy_id": "sma"})
                order = await receive_type(ws, "order")
                strategy = await receive_type(ws, "strategy")
        finally:
            await worker.stop()
            await here.stop()
            for client in clients:
                await client.aclose()
    assert order == {
        "type": "order",
        "channel": "orders",
        "data": {"client_order_id": "w-1", "status": "filled"},
    }
    assert strategy["data"] == {"kind": "started", "strategy_id": "sma"}
