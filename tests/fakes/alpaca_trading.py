"""A local Alpaca trading API for tests: REST v2 and the ``trade_updates`` stream on one port.

alpaca-py talks to it over real sockets (``url_override=fake.base_url``; the
stream is at ``ws://127.0.0.1:<port>/stream`` like ``wss://paper-api.../stream``).

REST, with ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` auth (401 otherwise):
``POST /v2/orders``, ``GET /v2/orders`` (``status`` open|closed|all, ``limit``
<= 500, ``after``/``until`` on ``submitted_at``, ``direction``, ``symbols``,
``side``), ``GET /v2/orders/{id}``, ``GET /v2/orders:by_client_order_id``,
``DELETE /v2/orders/{id}`` (204; 422 when not cancelable), ``GET
/v2/positions``, ``GET /v2/account``. Errors are ``{"code", "message"}``:
422/40010001 "client_order_id must be unique", 403/40310000 "insufficient
buying power", 404/40410000, 429/42910000 "rate limit exceeded" with
``Retry-After``.

Stream: ``{"action":"authenticate","data":{"key_id","secret_key"}}`` →
``{"stream":"authorization","data":{"status":"authorized","action":"authenticate"}}``
(``unauthorized`` and close for bad keys); ``{"action":"listen","data":{"streams":[...]}}``
→ ``{"stream":"listening","data":{"streams":["trade_updates"]}}``; then
``{"stream":"trade_updates","data":{...}}`` for every order change. Like the
paper server, it sends binary frames. Updates sent while no connection listens
are lost, as with Alpaca.

Misbehaviour on demand, each for the next N matching requests: ``fail_next``
(500 or any status), ``rate_limit_next`` (429 + ``Retry-After``),
``drop_response_next`` (the request takes effect, then the connection is reset
with no answer), ``delay_next``. ``drop_stream()`` resets the stream
connections; ``silence_stream()`` makes them stop reading and writing (pings go
unanswered, updates are lost). Every request is recorded in ``requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from websockets.frames import Opcode
from websockets.protocol import State

from tests.fakes.alpaca_trading_book import AlpacaBook, BookError, FakeOrder
from tests.fakes.alpaca_trading_wire import (
    HttpResponse,
    RecordedRequest,
    StreamConnection,
    accept_websocket,
    encode_response,
    query_time,
    read_request,
)
from trademk.engine.clock import Clock, LiveClock

MAX_PAGE = 500


@dataclass
class _Rule:
    kind: str  # "status" | "rate_limit" | "drop" | "delay"
    remaining: int
    method: str | None
    path: str | None
    status: int = 500
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and (self.path is None or path == self.path)
        )


class AlpacaTradingFake:
    """The fake server; ``async with AlpacaTradingFake() as fake:`` starts and stops it."""

    def __init__(
        self,
        *,
        api_key: str = "PKFAKEKEY",
        secret_key: str = "fake-secret",
        cash: Decimal = Decimal(100_000),
        clock: Clock | None = None,
        emit_pending_cancel: bool = False,
        hold_new_orders: bool = False,
    ) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        self.clock = clock or LiveClock()
        self.book = AlpacaBook(self.clock, cash=cash, emit_pending_cancel=emit_pending_cancel)
        self.hold_new_orders = hold_new_orders
        self.requests: list[RecordedRequest] = []
        self.published: list[dict[str, Any]] = []
        self.stream_connections: list[StreamConnection] = []
        self.port = 0
        self._rules: list[_Rule] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any] | None] = set()
        self._stopping = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._stopping.set()
        for writer in list(self._writers):
            writer.transport.abort()
        handlers = [task for task in self._handlers if task is not None]
        _done, pending = await asyncio.wait(handlers, timeout=1.0) if handlers else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AlpacaTradingFake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    # -- test controls --------------------------------------------------------------------

    async def set_market(
        self,
        symbol: str,
        bid: Decimal,
        ask: Decimal,
        bid_size: Decimal | None = None,
        ask_size: Decimal | None = None,
    ) -> None:
        """Set the top of book for an Alpaca symbol (``BTC/USD``, ``AAPL``); orders may fill."""
        await self._publish(self.book.set_market(symbol, bid, ask, bid_size, ask_size))

    async def fill(self, client_order_id: str, qty: Decimal, price: Decimal) -> None:
        """Fill part of a working order by hand."""
        await self._publish([self.book.execute(self.order(client_order_id), qty, price)])

    async def release(self, client_order_id: str) -> None:
        """Route an order held by ``hold_new_orders``."""
        await self._publish(self.book.activate(self.order(client_order_id)))

    async def cancel(self, client_order_id: str) -> None:
        """Cancel an order at the venue (as from Alpaca's dashboard)."""
        await self._publish(self.book.cancel(self.order(client_order_id).id))

    async def end_order(self, client_order_id: str, status: str) -> None:
        """End an open order as ``expired``, ``done_for_day``, ``canceled`` or ``rejected``."""
        await self._publish(self.book.close(self.order(client_order_id), status))

    async def replay(self, count: int = 1) -> None:
        """Send the last ``count`` trade updates again (Alpaca may repeat itself)."""
        for message in self.published[-count:]:
            for connection in self.stream_connections:
                if connection.listening:
                    connection.send(message)

    def order(self, client_order_id: str) -> FakeOrder:
        return self.book.orders[self.book.by_client_id[client_order_id]]

    def fail_next(
        self, count: int = 1, status: int = 500, method: str | None = None, path: str | None = None
    ) -> None:
        self._rules.append(_Rule("status", count, method, path, status=status))

    def rate_limit_next(
        self,
        count: int = 1,
        retry_after: int = 0,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self._rules.append(_Rule("rate_limit", count, method, path, seconds=retry_after))

    def drop_response_next(
        self, count: int = 1, method: str | None = "POST", path: str | None = "/v2/orders"
    ) -> None:
        self._rules.append(_Rule("drop", count, method, path))

    def delay_next(
        self, seconds: float, count: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        self._rules.append(_Rule("delay", count, method, path, seconds=seconds))

    async def drop_stream(self) -> None:
        """Reset every stream connection (no close handshake)."""
        for connection in self.stream_connections:
            connection.abort()

    def silence_stream(self) -> None:
        """Current stream connections stop reading and writing (the peer sees silence)."""
        for connection in self.stream_connections:
            connection.silent = True

    @property
    def listening_connections(self) -> int:
        return sum(1 for c in self.stream_connections if c.listening and c.open and not c.silent)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- connections -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        self._handlers.add(handler)
        self._writers.add(writer)
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                if (
                    request.path == "/stream"
                    and "upgrade" in request.headers.get("connection", "").lower()
                ):
                    await self._serve_stream(request, reader, writer)
                    return
                if not await self._serve_http(request, writer):
                    return
        except (
            ConnectionError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            # stop() cancels handlers still busy; a connection handler ends quietly.
            asyncio.CancelledError,
        ):
            return
        finally:
            self._writers.discard(writer)
            self._handlers.discard(handler)
            writer.close()

    def _take_rule(self, kind: str, method: str, path: str) -> _Rule | None:
        for rule in self._rules:
            if rule.kind == kind and rule.matches(method, path):
                rule.remaining -= 1
                return rule
        return None

    async def _serve_http(self, request: RecordedRequest, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end."""
        self.requests.append(request)
        method, path = request.method, request.path
        delay = self._take_rule("delay", method, path)
        if delay is not None:
            await asyncio.sleep(delay.seconds)
        response = self._injected(method, path)
        updates: list[dict[str, Any]] = []
        if response is None:
            response, updates = self._route(request)
            if self._take_rule("drop", method, path) is not None:
                writer.transport.abort()
                await self._publish(updates)
                return False
        request.status = response.status
        writer.write(encode_response(response))
        await writer.drain()
        await self._publish(updates)
        return True

    def _injected(self, method: str, path: str) -> HttpResponse | None:
        limited = self._take_rule("rate_limit", method, path)
        if limited is not None:
            return HttpResponse(
                429,
                {"code": 42910000, "message": "rate limit exceeded"},
                {"Retry-After": str(int(limited.seconds))},
            )
        failing = self._take_rule("status", method, path)
        if failing is not None:
            return HttpResponse(failing.status, {"code": 50010000, "message": "internal failure"})
        return None

    # -- REST ---------------------------------------------------------------------------------

    def _route(self, request: RecordedRequest) -> tuple[HttpResponse, list[dict[str, Any]]]:
        headers = request.headers
        if (
            headers.get("apca-api-key-id") != self.api_key
            or headers.get("apca-api-secret-key") != self.secret_key
        ):
            return HttpResponse(401, {"code": 40110000, "message": "request is not authorized"}), []
        try:
            return self._dispatch(request)
        except BookError as err:
            return HttpResponse(err.status, err.body), []

    def _dispatch(self, request: RecordedRequest) -> tuple[HttpResponse, list[dict[str, Any]]]:
        """The answer, and the trade updates to stream once it is sent."""
        method, path, query = request.method, request.path, request.query
        if method == "POST" and path == "/v2/orders":
            if not isinstance(request.body, dict):
                raise BookError(400, 40010000, "request body format is invalid")
            order = self.book.place(request.body)
            if self.hold_new_orders:
                order.status = "pending_new"
                return HttpResponse(200, order.to_json()), []
            # The answer shows the order as accepted; routing (and any fill) happens
            # at once, before another request is served, and is streamed after it.
            answer = order.to_json()
            return HttpResponse(200, answer), self.book.activate(order)
        if method == "GET" and path == "/v2/orders":
            return HttpResponse(200, self._list_orders(query)), []
        if method == "GET" and path == "/v2/orders:by_client_order_id":
            order_id = self.book.by_client_id.get(query.get("client_order_id", ""))
            if order_id is None:
                raise BookError(404, 40410000, "order not found")
            return HttpResponse(200, self.book.orders[order_id].to_json()), []
        if path.startswith("/v2/orders/") and method in ("GET", "DELETE"):
            order_id = path.removeprefix("/v2/orders/")
            if order_id not in self.book.orders:
                raise BookError(404, 40410000, f"order not found for {order_id}")
            if method == "GET":
                return HttpResponse(200, self.book.orders[order_id].to_json()), []
            updates = self.book.cancel(order_id)
            return HttpResponse(204), updates
        if method == "GET" and path == "/v2/positions":
            return HttpResponse(200, self.book.positions_json()), []
        if method == "GET" and path == "/v2/account":
            return HttpResponse(200, self.book.account_json()), []
        return HttpResponse(404, {"code": 40410000, "message": "endpoint not found"}), []

    def _list_orders(self, query: dict[str, str]) -> list[dict[str, Any]]:
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise BookError(422, 40010001, "status must be open, closed or all")
        limit = int(query.get("limit", "50"))
        if not 0 < limit <= MAX_PAGE:
            raise BookError(422, 40010001, f"limit must be between 1 and {MAX_PAGE}")
        after = query_time(query.get("after"))
        until = query_time(query.get("until"))
        symbols = set(filter(None, query.get("symbols", "").split(",")))
        selected = [
            order
            for order in self.book.orders.values()
            if (status == "all" or (status == "open") == order.is_open)
            and (after is None or order.created_ns > after)
            and (until is None or order.created_ns <= until)
            and (not symbols or order.symbol in symbols)
            and query.get("side") in (None, order.side)
        ]
        descending = query.get("direction", "desc") == "desc"
        selected.sort(key=lambda o: o.created_ns, reverse=descending)
        return [order.to_json() for order in selected[:limit]]

    # -- stream -------------------------------------------------------------------------------

    async def _publish(self, updates: list[dict[str, Any]]) -> None:
        for data in updates:
            message = {"stream": "trade_updates", "data": data}
            self.published.append(message)
            for connection in self.stream_connections:
                if connection.listening:
                    connection.send(message)
        for connection in self.stream_connections:
            if connection.open and not connection.silent:
                with contextlib.suppress(ConnectionError):
                    await connection.writer.drain()

    async def _serve_stream(
        self, request: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.requests.append(request)
        connection = accept_websocket(request, writer)
        self.stream_connections.append(connection)
        while connection.protocol.state is not State.CLOSED and not connection.silent:
            data = await reader.read(65536)
            if connection.silent:
                break
            if data:
                connection.protocol.receive_data(data)
            else:
                connection.protocol.receive_eof()
            for frame in connection.protocol.events_received():
                if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                    self._on_stream_message(connection, frame.data)
            connection.flush()
            await writer.drain()
            if not data:
                return
        if connection.silent:
            await self._stopping.wait()  # hold the socket open, unread, until stop()

    def _on_stream_message(self, connection: StreamConnection, payload: bytes) -> None:
        try:
            message = json.loads(payload)
            action, data = message["action"], message.get("data") or {}
        except (ValueError, KeyError, TypeError):
            connection.send({"stream": "error", "data": {"error_message": "invalid syntax"}})
            return
        connection.received.append(message)
        if action == "authenticate":
            good = data.get("key_id") == self.api_key and data.get("secret_key") == self.secret_key
            status = "authorized" if good else "unauthorized"
            connection.send(
                {"stream": "authorization", "data": {"status": status, "action": "authenticate"}}
            )
            connection.authenticated = good
            if not good:
                connection.close()
        elif action == "listen" and connection.authenticated:
            streams = [s for s in data.get("streams", []) if s == "trade_updates"]
            connection.listening = bool(streams)
            connection.send({"stream": "listening", "data": {"streams": streams}})
        elif action == "listen":
            connection.send(
                {"stream": "authorization", "data": {"status": "unauthorized", "action": "listen"}}
            )
            connection.close()
        else:
            connection.send({"stream": "error", "data": {"error_message": "invalid action"}})
