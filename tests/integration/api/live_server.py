"""The whole API served by uvicorn on a real socket, for WebSocket tests.

The server runs in the test's own event loop (the bus and the price cache are
asyncio objects), on 127.0.0.1 with a port the OS picks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from tests.integration.security.conftest import PASSWORD, settings_for
from trademk.api.app import create_app
from trademk.api.routes.ws import ClientSession
from trademk.domain.market import Tick, TickKind
from trademk.runtime import Platform
from trademk.security.roles import Role, Scope
from trademk.security.tokens import TokenType
from trademk.wiring.live import WebSocketOptions

QUIET_HEARTBEAT = WebSocketOptions(heartbeat_seconds=60.0)


@dataclass
class LiveApi:
    platform: Platform
    port: int
    http: httpx.AsyncClient

    def ws_url(self, **query: str) -> str:
        suffix = f"?{urlencode(query)}" if query else ""
        return f"ws://127.0.0.1:{self.port}/ws{suffix}"

    async def user_token(self, role: Role) -> tuple[str, str]:
        """A new user's email and a fresh access token for it."""
        email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
        user = await self.platform.security.users.create(email, PASSWORD, role)
        return email, self.platform.security.tokens.issue(user.id, TokenType.ACCESS).token

    async def api_key(self, role: Role, scope: Scope) -> str:
        email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
        user = await self.platform.security.users.create(email, PASSWORD, role)
        created = await self.platform.security.api_keys.create(
            user.id, user.role, "ws test", frozenset({scope}), None
        )
        return created.key

    def trade(self, symbol: str, price: float, seq: int = 0, ts: int | None = None) -> None:
        now = self.platform.clock.now_ns() if ts is None else ts
        self.platform.market.prices.update(
            Tick(
                symbol=symbol,
                exchange="TEST",
                kind=TickKind.TRADE,
                ts=now,
                price=price,
                qty=1.0,
                seq=seq,
                received=now,
            )
        )

    def quote(self, symbol: str, bid: float, ask: float) -> None:
        now = self.platform.clock.now_ns()
        self.platform.market.prices.update(
            Tick(
                symbol=symbol,
                exchange="TEST",
                kind=TickKind.QUOTE,
                ts=now,
                price=(bid + ask) / 2,
                bid=bid,
                bid_size=1_000.0,
                ask=ask,
                ask_size=1_000.0,
                received=now,
            )
        )

    def session_of(self, email: str) -> ClientSession:
        """The server side of the connection opened by ``email``."""
        found = [s for s in self.platform.live.connections if s.principal.email == email]
        assert len(found) == 1, f"{len(found)} sessions for {email}"
        session: ClientSession = found[0]
        return session


def listening_socket(send_buffer: int | None) -> socket.socket:
    """127.0.0.1 on a free port; connections inherit ``send_buffer`` (bytes) when given,
    which stops the kernel from growing it to megabytes for a slow reader."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def live_api(
    tmp_path: Path,
    options: WebSocketOptions = QUIET_HEARTBEAT,
    send_buffer: int | None = None,
    **overrides: Any,
) -> AsyncIterator[LiveApi]:
    settings = settings_for(tmp_path, **overrides)
    platform = Platform(settings, run_feed=False)
    await platform.start()
    platform.live.options = options
    config = uvicorn.Config(
        create_app(platform=platform), lifespan="off", log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    listener = listening_socket(send_buffer)
    port = listener.getsockname()[1]
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            yield LiveApi(platform, port, http)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, 10)
        await platform.stop()
        listener.close()


async def slow_connection(api: LiveApi, token: str) -> ClientConnection:
    """A client with a tiny receive buffer and no compression, reading only when told to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", api.port))
    return await connect(api.ws_url(token=token), sock=sock, max_queue=1, compression=None)


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(message).decode())


async def receive(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    """The next message other than a heartbeat."""
    while True:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), within))
        if message.get("type") != "heartbeat":
            return message


async def receive_type(ws: ClientConnection, kind: str, within: float = 5.0) -> dict[str, Any]:
    """The next message of ``type`` == ``kind``, skipping others."""
    async with asyncio.timeout(within):
        while True:
            message = await receive(ws, within)
            if message.get("type") == kind:
                return message


async def subscribe(ws: ClientConnection, *channels: str) -> dict[str, Any]:
    await send(ws, {"action": "subscribe", "channels": list(channels)})
    return await receive_type(ws, "subscribed")


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``predicate`` (server-side state has no event to await) until it holds."""
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.001)
