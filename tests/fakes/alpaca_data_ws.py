"""A local Alpaca real-time stock data server (``/v2/iex`` and ``/v2/sip``) for tests.

It speaks the protocol as Alpaca documents it: JSON array frames, the
``connected`` greeting, ``auth`` within ``auth_timeout`` (404 otherwise), 401
for a subscribe sent before the ``authenticated`` answer (judged when it
arrives, so a client that does not wait for that answer fails; the answer
takes ``auth_reply_delay``), 402 and close for bad credentials, 403 for a
second auth, 406 and close for a second connection of one key to one feed, 409
for a feed the key may not use, 400 for malformed or unknown actions, 405 over
``symbol_limit``, and a ``subscription`` message after each (un)subscribe
(subscribing to trades also subscribes corrections and cancel errors). Data is
pushed with ``publish()`` to subscribed connections only.

Misbehaviour on demand: ``drop_connections()``, ``silence_connections()``,
``send_raw()`` (malformed frames), ``send_error()``, ``replay_last`` (re-send
the last K published messages to every new subscription), ``stop()`` then
``start()`` on the same port. Each connection's transcript is recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

FEEDS = ("iex", "sip")
# Channels a client may name in a subscribe message, and the channel of each data
# message type ``T``.
SUBSCRIBABLE = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds",
                "corrections", "cancelErrors")  # fmt: skip
CHANNEL_OF_TYPE = dict(zip("tqbudslcx", SUBSCRIBABLE, strict=True))
ERRORS = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    500: "internal error",
}


# fmt: off
def trade(
    symbol: str, trade_id: int, price: float, size: float, ts: str, exchange: str = "V",
    conditions: Sequence[str] = ("@",), tape: str = "C",
) -> dict[str, Any]:
    """A trade message as Alpaca sends it."""
    return {"T": "t", "S": symbol, "i": trade_id, "x": exchange, "p": price, "s": size,
            "c": list(conditions), "t": ts, "z": tape}


def quote(
    symbol: str, bid: float, bid_size: float, ask: float, ask_size: float, ts: str
) -> dict[str, Any]:
    """A quote message as Alpaca sends it."""
    return {"T": "q", "S": symbol, "bx": "U", "bp": bid, "bs": bid_size, "ax": "Q", "ap": ask,
            "as": ask_size, "c": ["R"], "t": ts, "z": "C"}


def bar(
    symbol: str, ts: str, o: float, h: float, lo: float, c: float, v: float, n: int, vw: float
) -> dict[str, Any]:
    """A minute bar message as Alpaca sends it."""
    return {"T": "b", "S": symbol, "o": o, "h": h, "l": lo, "c": c, "v": v, "t": ts, "n": n,
            "vw": vw}
# fmt: on


def _dumps(messages: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(messages), separators=(",", ":"))


@dataclass
class ConnectionRecord:
    """What one client connection did: its transcript and its subscriptions."""

    number: int
    feed: str
    opened_at: float
    transcript: list[tuple[str, str]] = field(default_factory=list)
    key: str | None = None
    authenticated: bool = False
    subscribed: bool = False
    silent: bool = False
    closed: bool = False
    subscriptions: dict[str, list[str]] = field(
        default_factory=lambda: {channel: [] for channel in SUBSCRIBABLE}
    )
    ws: ServerConnection | None = field(default=None, repr=False)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def received(self) -> list[Any]:
        """The client's frames, decoded as JSON where they are JSON."""
        out: list[Any] = []
        for who, text in self.transcript:
            if who == "client":
                try:
                    out.append(json.loads(text))
                except ValueError:
                    out.append(text)
        return out

    def wants(self, message: dict[str, Any]) -> bool:
        channel = CHANNEL_OF_TYPE.get(str(message.get("T")))
        if channel is None:
            return False
        symbols = self.subscriptions[channel]
        return "*" in symbols or message.get("S") in symbols


class _Closed(Exception):
    """The fake closed this connection on purpose (after an error message)."""


class FakeAlpacaDataServer:
    """Async context manager serving the Alpaca stock data protocol on 127.0.0.1."""

    def __init__(
        self,
        key: str = "test-key",
        secret: str = "test-secret",
        *,
        auth_timeout: float = 10.0,
        allowed_feeds: Iterable[str] = FEEDS,
        symbol_limit: int | None = None,
        replay_last: int = 0,
        auth_reply_delay: float = 0.0,
    ) -> None:
        self.key = key
        self.secret = secret
        self.auth_timeout = auth_timeout
        self.allowed_feeds = set(allowed_feeds)
        self.symbol_limit = symbol_limit
        self.replay_last = replay_last
        self.auth_reply_delay = auth_reply_delay
        self.connections: list[ConnectionRecord] = []
        self.history: dict[str, list[dict[str, Any]]] = {feed: [] for feed in FEEDS}
        self.port = 0
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> FakeAlpacaDataServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The base URL to give a client (it appends ``/v2/{feed}``)."""
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (again) on 127.0.0.1; the first start picks a free port and keeps it."""
        self._server = await serve(
            self._handle, "127.0.0.1", self.port, process_request=self._check_path
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    # -- test controls --------------------------------------------------------------

    def active(self, feed: str | None = None) -> list[ConnectionRecord]:
        """Open connections that completed a subscription (optionally on one feed)."""
        return [
            c
            for c in self.connections
            if c.subscribed and not c.closed and (feed is None or c.feed == feed)
        ]

    async def publish(
        self, messages: Sequence[dict[str, Any]], *, feed: str = "iex", batch: int | None = None
    ) -> int:
        """Send data messages to every subscribed, non-silent connection on ``feed``.

        Each connection gets only the messages for its subscriptions, in frames of
        at most ``batch`` messages (all in one frame by default). Returns how many
        messages were sent in total.
        """
        self.history[feed].extend(messages)
        sent = 0
        for record in self.active(feed):
            wanted = [m for m in messages if record.wants(m)]
            if wanted and not record.silent:
                async with record.send_lock:
                    sent += await self._send_batches(record, wanted, batch)
        return sent

    async def send_raw(self, frame: str, *, feed: str = "iex") -> None:
        """Send one frame verbatim (e.g. malformed) to every subscribed connection."""
        for record in self.active(feed):
            async with record.send_lock:
                await self._send_text(record, frame)

    async def send_error(self, code: int, *, feed: str = "iex", close: bool = False) -> None:
        """Send a documented error message to every subscribed connection."""
        for record in self.active(feed):
            async with record.send_lock:
                await self._send_error(record, code)
            if close and record.ws is not None:
                await record.ws.close()

    def drop_connections(self) -> int:
        """Abort every open connection without a close frame; returns how many."""
        dropped = 0
        for record in self.connections:
            if not record.closed and record.ws is not None:
                record.ws.transport.abort()
                dropped += 1
        return dropped

    def silence_connections(self) -> None:
        """Keep current connections open but never send them anything again."""
        for record in self.connections:
            record.silent = True

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is re-checked on every connection change."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_subscribed(self, count: int = 1, within: float = 5.0) -> ConnectionRecord:
        """Wait until ``count`` connections in all have subscribed; returns the latest."""
        await self.wait_for(
            lambda: sum(1 for c in self.connections if c.subscribed) >= count, within
        )
        return [c for c in self.connections if c.subscribed][count - 1]

    # -- protocol -------------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path in tuple(f"/v2/{feed}" for feed in FEEDS):
            return None
        return Response(HTTPStatus.NOT_FOUND, "Not Found", Headers(), b"not found\n")

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        record = ConnectionRecord(
            number=len(self.connections) + 1,
            feed=ws.request.path.rsplit("/", 1)[-1],
            opened_at=asyncio.get_running_loop().time(),
            ws=ws,
        )
        self.connections.append(record)
        await self._notify()
        inbox: asyncio.Queue[tuple[str, bool] | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read(record, inbox))
        try:
            await self._send(record, [{"T": "success", "msg": "connected"}])
            await self._authenticate(record, inbox)
            while True:
                request, authenticated_on_arrival = await self._next(inbox)
                if authenticated_on_arrival:
                    await self._on_request(record, request)
                else:
                    await self._before_auth(record, request)
        except (ConnectionClosed, _Closed):
            pass
        finally:
            record.closed = True
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await ws.close()
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    @staticmethod
    async def _read(
        record: ConnectionRecord, inbox: asyncio.Queue[tuple[str, bool] | None]
    ) -> None:
        """Queue client frames with whether the client was authenticated when each arrived.

        A message is judged by the state at its arrival, so a client that sends
        ``subscribe`` without waiting for ``authenticated`` gets 401 even though
        the server handles its messages in order.
        """
        assert record.ws is not None
        try:
            async for text in record.ws:
                record.transcript.append(("client", str(text)))
                inbox.put_nowait((str(text), record.authenticated))
        except ConnectionClosed:
            pass
        finally:
            inbox.put_nowait(None)

    @staticmethod
    async def _next(inbox: asyncio.Queue[tuple[str, bool] | None]) -> tuple[Any, bool]:
        item = await inbox.get()
        if item is None:
            raise _Closed("client went away")
        text, authenticated_on_arrival = item
        try:
            return json.loads(text), authenticated_on_arrival
        except ValueError:
            return None, authenticated_on_arrival

    async def _authenticate(
        self, record: ConnectionRecord, inbox: asyncio.Queue[tuple[str, bool] | None]
    ) -> None:
        deadline = asyncio.get_running_loop().time() + self.auth_timeout
        try:
            async with asyncio.timeout_at(deadline):
                while not record.authenticated:
                    request, _ = await self._next(inbox)
                    await self._before_auth(record, request)
        except TimeoutError:
            await self._fail(record, 404)

    async def _before_auth(self, record: ConnectionRecord, request: Any) -> None:
        action = request.get("action") if isinstance(request, dict) else None
        if action == "auth":
            await self._auth(record, request)
        elif action in ("subscribe", "unsubscribe"):
            await self._send_error(record, 401)
        else:
            await self._send_error(record, 400)

    async def _auth(self, record: ConnectionRecord, request: dict[str, Any]) -> None:
        await asyncio.sleep(self.auth_reply_delay)  # the time a credentials check takes
        if request.get("key") != self.key or request.get("secret") != self.secret:
            await self._fail(record, 402)
        if record.feed not in self.allowed_feeds:
            await self._fail(record, 409)
        holders = [
            c
            for c in self.connections
            if c is not record and c.authenticated and not c.closed and c.feed == record.feed
        ]
        if any(c.key == request["key"] for c in holders):
            await self._fail(record, 406)
        record.key = request["key"]
        record.authenticated = True
        await self._send(record, [{"T": "success", "msg": "authenticated"}])
        await self._notify()

    async def _on_request(self, record: ConnectionRecord, request: Any) -> None:
        action = request.get("action") if isinstance(request, dict) else None
        if action == "auth":
            await self._send_error(record, 403)
            return
        channels = self._channels_of(request) if action in ("subscribe", "unsubscribe") else None
        if channels is None:
            await self._send_error(record, 400)
            return
        if action == "subscribe":
            self._add(record, channels)
        else:
            self._remove(record, channels)
        if self.symbol_limit is not None and self._symbol_count(record) > self.symbol_limit:
            self._remove(record, channels)
            await self._send_error(record, 405)
            return
        async with record.send_lock:
            await self._send(record, [{"T": "subscription", **record.subscriptions}])
            if action == "subscribe":
                await self._replay(record)
            record.subscribed = True
        await self._notify()

    @staticmethod
    def _channels_of(request: dict[str, Any]) -> dict[str, list[str]] | None:
        """The channels named in a (un)subscribe request, or None when it is malformed."""
        channels = {k: v for k, v in request.items() if k != "action"}
        for name, symbols in channels.items():
            if name not in SUBSCRIBABLE or not isinstance(symbols, list):
                return None
            if not all(isinstance(s, str) and s for s in symbols):
                return None
        return channels

    @staticmethod
    def _add(record: ConnectionRecord, channels: dict[str, list[str]]) -> None:
        for name, symbols in channels.items():
            targets = [name, "corrections", "cancelErrors"] if name == "trades" else [name]
            for target in targets:
                current = record.subscriptions[target]
                current.extend(s for s in symbols if s not in current)

    @staticmethod
    def _remove(record: ConnectionRecord, channels: dict[str, list[str]]) -> None:
        for name, symbols in channels.items():
            targets = [name, "corrections", "cancelErrors"] if name == "trades" else [name]
            for target in targets:
                current = record.subscriptions[target]
                current[:] = [s for s in current if s not in symbols]

    @staticmethod
    def _symbol_count(record: ConnectionRecord) -> int:
        return len(set(record.subscriptions["trades"]) | set(record.subscriptions["quotes"]))

    async def _replay(self, record: ConnectionRecord) -> None:
        if self.replay_last > 0:
            last = self.history[record.feed][-self.replay_last :]
            wanted = [m for m in last if record.wants(m)]
            if wanted:
                await self._send_batches(record, wanted, None)

    async def _send_batches(
        self, record: ConnectionRecord, messages: list[dict[str, Any]], batch: int | None
    ) -> int:
        size = batch or len(messages)
        for start in range(0, len(messages), size):
            await self._send(record, messages[start : start + size])
        return len(messages)

    async def _send(self, record: ConnectionRecord, messages: Sequence[dict[str, Any]]) -> None:
        await self._send_text(record, _dumps(messages))

    async def _send_text(self, record: ConnectionRecord, text: str) -> None:
        if record.ws is None or record.closed:
            return
        record.transcript.append(("server", text))
        try:
            await record.ws.send(text)
        except ConnectionClosed:
            record.closed = True

    async def _send_error(self, record: ConnectionRecord, code: int) -> None:
        await self._send(record, [{"T": "error", "code": code, "msg": ERRORS[code]}])

    async def _fail(self, record: ConnectionRecord, code: int) -> None:
        """Send an error, close the connection and end its handler."""
        await self._send_error(record, code)
        if record.ws is not None:
            await record.ws.close()
        raise _Closed(code)
