"""Binance spot market-data feed over combined WebSocket streams.

Each subscribed symbol contributes ``<symbol>@trade`` and ``<symbol>@bookTicker``.
Streams are packed into as few connections as Binance allows (1024 streams per
connection, and a URL the server accepts), one reader task per connection. The
readers only parse and enqueue, so they never block: the websockets library
answers Binance's keepalive pings as long as frames keep being read.

Every connection reconnects forever with exponential backoff and jitter; a
connection that delivers nothing for ``silence_timeout`` seconds is treated as
dead, and one that reaches ``max_connection_age`` is replaced before Binance's
24-hour cut. Replayed events after a reconnect are dropped per symbol by trade id
and book update id.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from trademk.domain.market import Tick, TickKind
from trademk.engine.clock import Clock
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.venues.binance.schemas import (
    DEFAULT_EXCHANGE,
    BinanceFrameError,
    parse_frame,
    stream_names,
)
from trademk.venues.reconnect import ExponentialBackoff, FeedCounters, feed_status

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL: Final = "wss://stream.binance.com:9443"
MAX_STREAMS_PER_CONNECTION: Final = 1024
# Binance refuses combined-stream URLs much beyond 8,000 characters.
DEFAULT_MAX_URL_LENGTH: Final = 8000
_SYMBOL_RE: Final = re.compile(r"^[A-Za-z0-9]{1,32}$")
_FRAME_PREVIEW_CHARS: Final = 200


class _Closed:
    """Queue sentinel that ends ``stream()``."""


_CLOSED: Final = _Closed()


def combined_stream_url(base_url: str, streams: Sequence[str]) -> str:
    """The combined-stream URL for a list of stream names."""
    return f"{base_url.rstrip('/')}/stream?streams={'/'.join(streams)}"


def plan_connections(
    symbols: Sequence[str], base_url: str, streams_per_connection: int, max_url_length: int
) -> list[list[str]]:
    """Pack each symbol's streams into connections without splitting a symbol.

    A connection holds at most ``streams_per_connection`` streams and its URL at
    most ``max_url_length`` characters.
    """
    plans: list[list[str]] = []
    current: list[str] = []
    for symbol in symbols:
        names = list(stream_names(symbol))
        candidate = current + names
        fits = len(candidate) <= streams_per_connection
        if fits and len(combined_stream_url(base_url, candidate)) <= max_url_length:
            current = candidate
            continue
        if len(combined_stream_url(base_url, names)) > max_url_length:
            raise ValueError(f"symbol {symbol!r} does not fit in a URL of {max_url_length} chars")
        if current:
            plans.append(current)
        current = names
    if current:
        plans.append(current)
    return plans


def normalize_symbols(symbols: Sequence[str]) -> list[str]:
    """Upper-case, validated, de-duplicated symbols in their given order."""
    if isinstance(symbols, str):
        raise TypeError("symbols must be a sequence of symbols, not a single string")
    result: list[str] = []
    for symbol in symbols:
        if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
            raise ValueError(f"invalid Binance symbol {symbol!r}: expected letters and digits")
        upper = symbol.upper()
        if upper not in result:
            result.append(upper)
    return result


class ConnectionAttemptLimiter:
    """Keeps connection attempts under Binance's per-IP limit (300 per 5 minutes)."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("connection attempt limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._attempts: deque[float] = deque()

    async def acquire(self) -> None:
        """Wait until one more attempt fits in the window, then record it."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._attempts and now - self._attempts[0] >= self.window:
                self._attempts.popleft()
            if len(self._attempts) < self.limit:
                self._attempts.append(now)
                return
            await asyncio.sleep(self._attempts[0] + self.window - now)


@dataclass
class _SessionState:
    """What the watchdog knows about one live connection."""

    opened: float
    last_activity: float
    reason: str = ""
    planned: bool = False


class BinanceFeed:
    """``MarketDataFeed`` for Binance spot trades and best bid/ask.

    ``stream()`` supports one consumer at a time and yields until ``close()``.
    The connection readers keep running when the consumer falls behind; ticks
    wait in a queue of ``max_queue`` entries, beyond which the oldest are
    dropped and counted (``overflow_drops``) rather than stalling the sockets.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        clock: Clock,
        symbols: Sequence[str] = (),
        silence_timeout: float = 30.0,
        max_connection_age: float = 23.5 * 3600,
        backoff: ExponentialBackoff | None = None,
        streams_per_connection: int = MAX_STREAMS_PER_CONNECTION,
        max_url_length: int = DEFAULT_MAX_URL_LENGTH,
        connection_attempt_limit: tuple[int, float] = (300, 300.0),
        max_queue: int = 100_000,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        exchange: str = DEFAULT_EXCHANGE,
        name: str = "binance",
    ) -> None:
        if not base_url.startswith(("ws://", "wss://")):
            raise ValueError(f"base_url must start with ws:// or wss://, got {base_url!r}")
        if not 2 <= streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"streams_per_connection must be in [2, {MAX_STREAMS_PER_CONNECTION}]")
        if silence_timeout <= 0 or max_connection_age <= 0 or max_queue < 1:
            raise ValueError("silence_timeout, max_connection_age and max_queue must be positive")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._silence_timeout = silence_timeout
        self._max_connection_age = max_connection_age
        self._backoff_template = backoff or ExponentialBackoff()
        self._streams_per_connection = streams_per_connection
        self._max_url_length = max_url_length
        self._limiter = ConnectionAttemptLimiter(*connection_attempt_limit)
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._exchange = exchange
        self._symbols = normalize_symbols(symbols)
        self._plans = self._plan(self._symbols)
        self._queue: asyncio.Queue[Tick | _Closed] = asyncio.Queue(maxsize=max_queue)
        self._tasks: list[asyncio.Task[None]] = []
        self._connected: set[int] = set()
        self._last_trade_id: dict[str, int] = {}
        self._last_update_id: dict[str, int] = {}
        self._streaming = False
        self._started = False
        self._closed = False
        self._lifecycle = Lifecycle(name)
        self._counters = FeedCounters(
            extra={"connections": 0, "overflow_drops": 0, "ignored_frames": 0}
        )

    # -- public API ---------------------------------------------------------

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Replace the symbol set; live connections are reopened with the new streams."""
        normalized = normalize_symbols(symbols)
        if not normalized:
            raise ValueError("subscribe needs at least one symbol")
        plans = self._plan(normalized)
        if normalized == self._symbols and self._tasks:
            return
        self._symbols, self._plans = normalized, plans
        if self._started and not self._closed:
            log.info("binance.resubscribe", symbols=normalized, connections=len(plans))
            await self._stop_connections()
            self._start_connections()

    async def stream(self) -> AsyncIterator[Tick]:
        """Ticks from every connection, across reconnects, until ``close()``."""
        if self._streaming:
            raise RuntimeError("BinanceFeed.stream() supports one consumer at a time")
        self._streaming = True
        try:
            if not self._started and not self._closed:
                self._started = True
                self._start_connections()
            while not self._closed:
                item = await self._queue.get()
                if isinstance(item, _Closed) or self._closed:
                    return
                yield item
        finally:
            self._streaming = False

    def status(self) -> dict[str, Any]:
        """Counters, lifecycle state and whether every connection is up."""
        self._counters.extra["connections"] = len(self._plans)
        return feed_status(
            self.name, self._lifecycle, self._counters, self.connected, list(self._symbols)
        )

    @property
    def connected(self) -> bool:
        """True when every planned connection is open."""
        return bool(self._plans) and len(self._connected) == len(self._plans)

    async def close(self) -> None:
        """Stop all connections and end ``stream()``; idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._stop_connections()
        self._lifecycle.to(ComponentState.STOPPED, "closed")
        self._enqueue(_CLOSED)
        log.info("binance.closed", **self._counter_fields())

    # -- connections --------------------------------------------------------

    def _plan(self, symbols: Sequence[str]) -> list[list[str]]:
        return plan_connections(
            symbols, self.base_url, self._streams_per_connection, self._max_url_length
        )

    def _start_connections(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run_connection(index, streams), name=f"binance-ws-{index}")
            for index, streams in enumerate(self._plans)
        ]

    async def _stop_connections(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_connection(self, index: int, streams: list[str]) -> None:
        """Keep one connection alive forever: connect, pump, back off, repeat."""
        backoff = copy.copy(self._backoff_template)
        backoff.reset()
        url = combined_stream_url(self.base_url, streams)
        first_attempt = True
        while not self._closed:
            if not first_attempt:
                self._counters.reconnects += 1
            first_attempt = False
            await self._limiter.acquire()
            state = await self._session(index, url, len(streams), backoff)
            if self._closed:
                return
            delay = 0.0 if state.planned else backoff.next_delay()
            log.info(
                "binance.reconnect_delay",
                connection=index,
                delay=round(delay, 4),
                attempt=backoff.attempt,
                reason=state.reason,
            )
            await asyncio.sleep(delay)

    async def _session(
        self, index: int, url: str, stream_count: int, backoff: ExponentialBackoff
    ) -> _SessionState:
        """One connection from handshake to close; returns why it ended."""
        loop = asyncio.get_running_loop()
        state = _SessionState(opened=loop.time(), last_activity=loop.time())
        try:
            async with connect(
                url,
                ping_interval=None,  # Binance pings us; its pongs are answered by the library
                open_timeout=self._open_timeout,
                close_timeout=self._close_timeout,
            ) as ws:
                state.opened = state.last_activity = loop.time()
                self._on_connected(index, stream_count)
                await self._pump(ws, state, backoff)
        except ConnectionClosed as err:
            state.reason = state.reason or f"connection closed: {err}"
        except asyncio.CancelledError:
            state.reason = "stopped"
            raise
        except Exception as err:  # any failure is a reason to reconnect, never to die
            state.reason = state.reason or f"{type(err).__name__}: {err}"
        finally:
            self._on_disconnected(index, state)
        return state

    async def _pump(
        self, ws: ClientConnection, state: _SessionState, backoff: ExponentialBackoff
    ) -> None:
        loop = asyncio.get_running_loop()
        watchdog = asyncio.create_task(self._watch(ws, state))
        healthy = False
        try:
            async for frame in ws:
                state.last_activity = loop.time()
                if self._handle_frame(frame) and not healthy:
                    healthy = True
                    backoff.reset()
            state.reason = state.reason or f"closed by server: {ws.close_code} {ws.close_reason}"
        finally:
            watchdog.cancel()

    async def _watch(self, ws: ClientConnection, state: _SessionState) -> None:
        """Close the connection when it falls silent or reaches its planned age."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            silent_for = now - state.last_activity
            if silent_for >= self._silence_timeout:
                state.reason = f"silent for {silent_for:.2f}s"
                break
            if now - state.opened >= self._max_connection_age:
                state.reason = "planned reconnect: maximum connection age reached"
                state.planned = True
                break
            await asyncio.sleep(
                min(
                    self._silence_timeout - silent_for,
                    state.opened + self._max_connection_age - now,
                )
            )
        await ws.close(reason=state.reason[:100])

    def _on_connected(self, index: int, stream_count: int) -> None:
        self._connected.add(index)
        log.info("binance.connected", connection=index, streams=stream_count)
        if self.connected:
            self._lifecycle.to(ComponentState.RUNNING, "connected")

    def _on_disconnected(self, index: int, state: _SessionState) -> None:
        was_connected = index in self._connected
        self._connected.discard(index)
        if state.reason != "stopped":
            self._counters.last_error = state.reason
        if state.reason == "stopped":
            log.info("binance.disconnected", connection=index, reason=state.reason)
        elif was_connected:
            log.warning("binance.disconnected", connection=index, reason=state.reason)
        else:
            log.warning("binance.connect_failed", connection=index, reason=state.reason)
        if self._closed:
            return
        if self._lifecycle.state in (ComponentState.RUNNING, ComponentState.DEGRADED):
            self._lifecycle.to(ComponentState.DEGRADED, state.reason)
        else:
            self._lifecycle.to(self._lifecycle.state, state.reason)

    # -- frames -------------------------------------------------------------

    def _handle_frame(self, frame: str | bytes) -> bool:
        """Parse, deduplicate and enqueue one frame; False when it was malformed."""
        received = self._clock.now_ns()
        counters = self._counters
        counters.messages += 1
        counters.last_message_ns = received
        try:
            tick = parse_frame(frame, received, self._exchange)
        except BinanceFrameError as err:
            counters.parse_errors += 1
            counters.last_error = str(err)
            log.warning("binance.parse_error", error=str(err), frame=frame[:_FRAME_PREVIEW_CHARS])
            return False
        if tick is None:
            counters.extra["ignored_frames"] += 1
        elif self._is_duplicate(tick):
            counters.duplicates += 1
        else:
            counters.ticks += 1
            self._enqueue(tick)
        return True

    def _is_duplicate(self, tick: Tick) -> bool:
        last_seen = self._last_trade_id if tick.kind is TickKind.TRADE else self._last_update_id
        seq = tick.seq
        if seq is None:
            return False
        previous = last_seen.get(tick.symbol)
        if previous is not None and seq <= previous:
            return True
        last_seen[tick.symbol] = seq
        return False

    def _enqueue(self, item: Tick | _Closed) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(item)
            drops = self._counters.extra["overflow_drops"] = (
                self._counters.extra["overflow_drops"] + 1
            )
            if drops & (drops - 1) == 0:  # log at 1, 2, 4, 8, ... drops
                log.warning("binance.queue_overflow", dropped=drops)

    def _counter_fields(self) -> dict[str, Any]:
        counters = self._counters
        return {
            "messages": counters.messages,
            "ticks": counters.ticks,
            "reconnects": counters.reconnects,
            "parse_errors": counters.parse_errors,
            "duplicates": counters.duplicates,
        }
