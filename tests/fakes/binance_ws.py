"""A local Binance spot market-stream server for tests (DESIGN.md §4).

It speaks the combined-stream protocol over a real socket: clients connect to
``/stream?streams=<name>/<name>/...`` (lowercase symbols), every event arrives as
``{"stream":"<name>","data":{...}}`` with prices and quantities as strings, the
server pings every ``ping_interval`` seconds and drops a client that does not
pong within ``ping_timeout``. Handshakes it cannot serve get an HTTP error, as
Binance's do: 400 for an unknown path or bad stream list, 414 for an over-long
URL, 429 beyond the connection-attempt limit.

Tests script it: ``trade()``/``book_ticker()`` publish events to every open
connection subscribed to the stream; ``send_raw()`` pushes arbitrary text;
``drop_connections()``, ``go_silent()``, ``replay_last`` and ``stop()``/
``start()`` make it misbehave on demand; ``connections`` records every
connection and the streams it asked for.

    async with FakeBinanceServer(ping_interval=0.05) as server:
        feed = BinanceFeed(server.url, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

MAX_STREAMS_PER_CONNECTION = 1024
_STREAM_RE = re.compile(
    r"^[a-z0-9]+@(trade|aggTrade|bookTicker|miniTicker|ticker|avgPrice|kline_\w+|depth\d*(@100ms)?)$"
)
Number = str | Decimal | int


@dataclass
class ConnectionRecord:
    """One accepted connection: what it asked for and how it went."""

    index: int
    path: str
    streams: tuple[str, ...]
    frames_sent: int = 0
    closed: bool = False
    close_code: int | None = None
    silent: bool = False
    drop_at_frame: int | None = None
    incoming: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Event:
    stream: str | None  # None: raw text sent to every connection
    text: str


def _wire_number(value: Number) -> str:
    """Binance's number strings: verbatim when given as text, else 8 decimals."""
    if isinstance(value, str):
        try:
            Decimal(value)
        except InvalidOperation as err:
            raise ValueError(f"not a decimal number: {value!r}") from err
        return value
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"prices and quantities are str, Decimal or int, not {type(value)}")
    return f"{Decimal(value):.8f}"


class FakeBinanceServer:
    """Scriptable Binance combined-stream server bound to 127.0.0.1."""

    def __init__(
        self,
        *,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 60.0,
        replay_last: int = 0,
        max_url_length: int = 8004,
        max_connection_age: float | None = None,
        connection_attempt_limit: tuple[int, float] = (300, 300.0),
        incoming_message_limit: int = 5,
        start_time_ms: int = 1_700_000_000_000,
    ) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.replay_last = replay_last
        """On every new connection, first re-send this many of its streams' latest events."""
        self.max_url_length = max_url_length
        self.max_connection_age = max_connection_age
        self.connection_attempt_limit = connection_attempt_limit
        self.incoming_message_limit = incoming_message_limit
        self.connections: list[ConnectionRecord] = []
        self.rejected: list[tuple[str, int]] = []
        self.port = 0
        self._server: Server | None = None
        self._log: list[_Event] = []
        self._open: dict[ServerConnection, ConnectionRecord] = {}
        self._attempts: deque[float] = deque()
        self._next_time_ms = start_time_ms
        self._trade_ids: dict[str, int] = {}
        self._update_ids: dict[str, int] = {}
        self._wakeup = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for the feed (``ws://127.0.0.1:<port>``)."""
        if not self.port:
            raise RuntimeError("server has not been started")
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1; after a ``stop()`` this reuses the same port."""
        if self._server is not None:
            raise RuntimeError("server already running")
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            self.port,
            process_request=self._check_handshake,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection (code 1001, going away)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> FakeBinanceServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- scripting ----------------------------------------------------------

    def trade(
        self,
        symbol: str,
        price: Number,
        qty: Number,
        *,
        trade_id: int | None = None,
        trade_time_ms: int | None = None,
        buyer_is_maker: bool = False,
    ) -> dict[str, Any]:
        """Publish a ``<symbol>@trade`` event; returns its ``data`` payload."""
        upper = symbol.upper()
        trade_id = self._next_id(self._trade_ids, upper, trade_id)
        trade_time = self._next_time() if trade_time_ms is None else trade_time_ms
        data = {
            "e": "trade",
            "E": trade_time + 2,
            "s": upper,
            "t": trade_id,
            "p": _wire_number(price),
            "q": _wire_number(qty),
            "T": trade_time,
            "m": buyer_is_maker,
            "M": True,
        }
        self._publish(f"{upper.lower()}@trade", data)
        return data

    def book_ticker(
        self,
        symbol: str,
        bid: Number,
        bid_qty: Number,
        ask: Number,
        ask_qty: Number,
        *,
        update_id: int | None = None,
    ) -> dict[str, Any]:
        """Publish a ``<symbol>@bookTicker`` event; returns its ``data`` payload."""
        upper = symbol.upper()
        data = {
            "u": self._next_id(self._update_ids, upper, update_id),
            "s": upper,
            "b": _wire_number(bid),
            "B": _wire_number(bid_qty),
            "a": _wire_number(ask),
            "A": _wire_number(ask_qty),
        }
        self._publish(f"{upper.lower()}@bookTicker", data)
        return data

    def send_raw(self, text: str) -> None:
        """Send arbitrary text (e.g. a malformed frame) to every open connection, in order."""
        self._append(_Event(None, text))

    def drop_connections(self, after_frames: int | None = None) -> int:
        """Cut every open connection at the TCP level, without a close frame.

        With ``after_frames`` each open connection is cut only once it has sent
        that many more frames, i.e. in the middle of a burst of events.
        Returns how many connections were affected.
        """
        records = list(self._open.items())
        for ws, record in records:
            if after_frames is None:
                ws.transport.abort()
            else:
                record.drop_at_frame = record.frames_sent + after_frames
        return len(records)

    def go_silent(self) -> None:
        """Stop sending data on every open connection but keep the sockets open."""
        for record in self._open.values():
            record.silent = True

    @property
    def open_connections(self) -> list[ConnectionRecord]:
        """Records of the connections open right now."""
        return list(self._open.values())

    async def wait_for_connections(self, count: int, within: float = 5.0) -> None:
        """Wait until ``count`` connections have been accepted in total."""
        await self.wait_until(lambda: len(self.connections) >= count, within)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Poll ``predicate`` until it holds; TimeoutError after ``within`` seconds."""
        async with asyncio.timeout(within):
            # Polling: predicates look at arbitrary state that signals no change events.
            while not predicate():
                await asyncio.sleep(0.005)

    # -- internals ----------------------------------------------------------

    def _next_time(self) -> int:
        self._next_time_ms += 1
        return self._next_time_ms

    @staticmethod
    def _next_id(counters: dict[str, int], symbol: str, given: int | None) -> int:
        value = counters.get(symbol, 0) + 1 if given is None else given
        counters[symbol] = max(value, counters.get(symbol, 0))
        return value

    def _publish(self, stream: str, data: dict[str, Any]) -> None:
        text = json.dumps({"stream": stream, "data": data}, separators=(",", ":"))
        self._append(_Event(stream, text))

    def _append(self, event: _Event) -> None:
        self._log.append(event)
        wakeup, self._wakeup = self._wakeup, asyncio.Event()
        wakeup.set()

    def _reject(self, connection: ServerConnection, path: str, status: int, text: str) -> Response:
        self.rejected.append((path, status))
        return connection.respond(status, text + "\n")

    def _attempt_allowed(self) -> bool:
        limit, window = self.connection_attempt_limit
        now = asyncio.get_running_loop().time()
        while self._attempts and now - self._attempts[0] >= window:
            self._attempts.popleft()
        self._attempts.append(now)
        return len(self._attempts) <= limit

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path
        if not self._attempt_allowed():
            return self._reject(connection, path, http.HTTPStatus.TOO_MANY_REQUESTS, "Too many")
        if len(path) > self.max_url_length:
            return self._reject(connection, path, http.HTTPStatus.REQUEST_URI_TOO_LONG, "URI")
        parts = urlsplit(path)
        streams_param = parse_qs(parts.query).get("streams", [])
        if parts.path != "/stream" or len(streams_param) != 1:
            return self._reject(connection, path, http.HTTPStatus.BAD_REQUEST, "Invalid path")
        streams = streams_param[0].split("/")
        if len(streams) > MAX_STREAMS_PER_CONNECTION:
            return self._reject(connection, path, http.HTTPStatus.BAD_REQUEST, "Too many streams")
        if not all(_STREAM_RE.match(stream) for stream in streams):
            return self._reject(connection, path, http.HTTPStatus.BAD_REQUEST, "Invalid stream")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path
        streams = tuple(parse_qs(urlsplit(path).query)["streams"][0].split("/"))
        record = ConnectionRecord(index=len(self.connections), path=path, streams=streams)
        # Fix the replay and start position now: every event published once the
        # connection is visible in ``connections`` is delivered on it.
        replay, cursor = self._replay_for(frozenset(streams))
        self.connections.append(record)
        self._open[ws] = record
        sender = asyncio.create_task(self._send_events(ws, record, replay, cursor))
        try:
            await self._read_incoming(ws, record)
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender
            record.closed = True
            record.close_code = ws.close_code
            self._open.pop(ws, None)

    async def _read_incoming(self, ws: ServerConnection, record: ConnectionRecord) -> None:
        """Read client messages; enforce the per-second limit and the connection age."""
        loop = asyncio.get_running_loop()
        recent: deque[float] = deque()
        async with asyncio.timeout(self.max_connection_age):
            try:
                async for message in ws:
                    record.incoming.append(str(message))
                    now = loop.time()
                    recent.append(now)
                    while now - recent[0] >= 1.0:
                        recent.popleft()
                    if len(recent) > self.incoming_message_limit:
                        await ws.close(1008, "Too many requests")
                        return
            except TimeoutError:
                await ws.close(1001, "Connection age limit")

    def _replay_for(self, stream_set: frozenset[str]) -> tuple[list[str], int]:
        """The last ``replay_last`` events of these streams, and the log position now."""
        replay: list[str] = []
        for event in reversed(self._log):
            if len(replay) >= self.replay_last:
                break
            if event.stream in stream_set:
                replay.append(event.text)
        replay.reverse()
        return replay, len(self._log)

    async def _send_events(
        self, ws: ServerConnection, record: ConnectionRecord, replay: list[str], cursor: int
    ) -> None:
        stream_set = frozenset(record.streams)
        for text in replay:
            await ws.send(text)
            record.frames_sent += 1
        while True:
            if record.silent:
                await asyncio.Event().wait()  # silent until the connection ends
            if cursor >= len(self._log):
                await self._wakeup.wait()
                continue
            event = self._log[cursor]
            cursor += 1
            if event.stream is None or event.stream in stream_set:
                await ws.send(event.text)
                record.frames_sent += 1
                if record.drop_at_frame is not None and record.frames_sent >= record.drop_at_frame:
                    ws.transport.abort()
                    return
