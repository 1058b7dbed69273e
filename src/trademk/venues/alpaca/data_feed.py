"""Alpaca real-time stock data feed (``wss://stream.data.alpaca.markets/v2/{iex|sip}``).

Handshake, in order, each step waiting for the server's answer: the server's
``connected`` greeting, then ``auth`` → ``authenticated``, then ``subscribe`` →
``subscription``. After that the feed reads data frames until the connection
drops or stays silent for ``silence_timeout``, then reconnects (backoff with
jitter) and resubscribes every symbol, forever, until ``close()``.

Errors that reconnecting at once cannot cure (bad credentials, the account's
single connection per feed still held elsewhere, a plan without this feed or
with too few symbols) are retried no sooner than ``auth_failure_backoff``, and
are shown in ``status()`` as DEGRADED with the server's reason. The secret is
never logged nor shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from trademk.domain.market import Bar, Tick
from trademk.engine.clock import Clock
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.venues.alpaca.data_dedup import RepeatFilter
from trademk.venues.alpaca.data_schemas import (
    DEFAULT_EXCHANGE,
    AlpacaAccountError,
    AlpacaFrameError,
    AlpacaStreamError,
    ControlMessage,
    ErrorMessage,
    SubscriptionMessage,
    SuccessMessage,
    encode_auth,
    encode_subscribe,
    error_from_message,
    parse_message_array,
)
from trademk.venues.reconnect import ExponentialBackoff, FeedCounters, feed_status

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL: Final = "wss://stream.data.alpaca.markets"
FEEDS: Final = ("iex", "sip")
CHANNELS: Final = ("trades", "quotes", "bars")
_CLOSE_TIMEOUT: Final = 1.0
# websockets logs frames at DEBUG, and the auth frame holds the secret: its
# logger for this feed never goes below INFO, whatever the root level is.
_WIRE_LOGGER: Final = logging.getLogger(f"{__name__}.wire")
_WIRE_LOGGER.setLevel(logging.INFO)
_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024

StreamItem = Tick | Bar


class _Closing(Exception):
    """``close()`` was called while the feed was connecting."""


def _describe(err: BaseException) -> str:
    if isinstance(err, AlpacaStreamError):
        return err.reason
    if isinstance(err, ConnectionClosed):
        return f"connection closed: {err}"
    if isinstance(err, OSError):
        return f"connect failed: {err}"
    return f"{type(err).__name__}: {err}"


class AlpacaDataFeed:
    """``MarketDataFeed`` over Alpaca's stock data WebSocket (trades, quotes, 1m bars).

    ``key``/``secret`` are the API key id and secret. ``silence_timeout`` (s)
    is how long a connection may go without any frame before it is treated as
    dead (None disables it; stock streams are quiet outside market hours).
    ``auth_failure_backoff`` (s) is the minimum wait after an account error
    such as 402 or 406. Trades and bars repeated after a reconnect are dropped
    and counted as ``duplicates`` (see ``RepeatFilter``; ``dedup_window`` is
    how many recent trades per symbol it remembers).
    """

    def __init__(
        self,
        key: str,
        secret: str,
        *,
        clock: Clock,
        feed: str = "iex",
        base_url: str = DEFAULT_BASE_URL,
        silence_timeout: float | None = 120.0,
        backoff: ExponentialBackoff | None = None,
        auth_failure_backoff: float = 60.0,
        channels: Sequence[str] = CHANNELS,
        handshake_timeout: float = 10.0,
        exchange: str = DEFAULT_EXCHANGE,
        dedup_window: int = 512,
        name: str | None = None,
    ) -> None:
        _validate_settings(key, secret, feed, base_url, channels)
        if silence_timeout is not None and silence_timeout <= 0:
            raise ValueError("silence_timeout must be positive (or None to disable)")
        if auth_failure_backoff < 0 or handshake_timeout <= 0:
            raise ValueError("auth_failure_backoff must be >= 0 and handshake_timeout > 0")
        self.name = name or f"alpaca-{feed}"
        self.url = f"{base_url.rstrip('/')}/v2/{feed}"
        self._key = key
        self._secret = secret
        self._feed = feed
        self._clock = clock
        self._silence_timeout = silence_timeout
        self._backoff = backoff or ExponentialBackoff()
        self._auth_failure_backoff = auth_failure_backoff
        self._channels = tuple(dict.fromkeys(channels))
        self._handshake_timeout = handshake_timeout
        self._exchange = exchange
        self._symbols: dict[str, None] = {}
        self._confirmed: dict[str, list[str]] = {}
        self._handshake_symbols: frozenset[str] = frozenset()
        self._ws: ClientConnection | None = None
        self._ready = False
        self._had_data = False
        self._streaming = False
        self._closing = asyncio.Event()
        self._lifecycle = Lifecycle(self.name)
        self._counters = FeedCounters()
        self._connections = 0
        self._repeats = RepeatFilter(dedup_window)

    # -- public API -----------------------------------------------------------------

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Add symbols on every configured channel; live at once when connected."""
        if isinstance(symbols, str):
            raise TypeError("subscribe() takes a sequence of symbols, not one string")
        added: list[str] = []
        for raw in symbols:
            if not isinstance(raw, str) or not raw.strip():
                raise ValueError(f"invalid symbol {raw!r}")
            symbol = raw.strip().upper()
            if symbol not in self._symbols:
                self._symbols[symbol] = None
                added.append(symbol)
        if not added:
            return
        log.info("alpaca_data_subscribe", feed=self.name, symbols=added)
        ws = self._ws
        if self._ready and ws is not None:
            # If the send fails the connection is gone; the reconnect subscribes all.
            with contextlib.suppress(ConnectionClosed):
                await ws.send(self._subscribe_frame(added), text=True)

    async def stream(self) -> AsyncIterator[StreamItem]:
        """Ticks and bars until ``close()``; reconnects and resubscribes on its own."""
        if self._streaming:
            raise RuntimeError(f"{self.name}: stream() is already being consumed")
        if self._lifecycle.state is ComponentState.STOPPED:
            return
        self._streaming = True
        self._lifecycle.to(ComponentState.RUNNING, "connecting")
        try:
            while not self._closing.is_set():
                delay = 0.0
                try:
                    for item in await self._open():
                        yield item
                    while True:
                        for item in self._data_items(await self._receive()):
                            yield item
                except _Closing:
                    break
                except AlpacaAccountError as err:
                    delay = self._after_failure(err, minimum=self._auth_failure_backoff)
                except (AlpacaStreamError, OSError, TimeoutError, WebSocketException) as err:
                    delay = self._after_failure(err)
                finally:
                    await self._discard_connection()
                await self._pause(delay)
        finally:
            self._streaming = False

    def status(self) -> dict[str, Any]:
        """State, reason, counters and subscriptions (see ``feed_status``)."""
        self._counters.extra.update(
            feed=self._feed,
            url=self.url,
            channels=list(self._channels),
            connections=self._connections,
            subscriptions={channel: list(s) for channel, s in self._confirmed.items()},
        )
        return feed_status(
            self.name, self._lifecycle, self._counters, self._ready, list(self._symbols)
        )

    async def close(self) -> None:
        """Stop: the stream ends promptly, whatever it is waiting for."""
        self._closing.set()
        if self._lifecycle.state is not ComponentState.STOPPED:
            self._lifecycle.to(ComponentState.STOPPED, "closed")
        await self._discard_connection()

    # -- connection -----------------------------------------------------------------

    async def _open(self) -> list[StreamItem]:
        """Connect and complete the handshake; returns data that arrived during it."""
        self._connections += 1
        if self._connections > 1:
            self._counters.reconnects += 1
        log.info("alpaca_data_connecting", feed=self.name, url=self.url, attempt=self._connections)
        ws = self._ws = await self._connect()
        self._had_data = False
        try:
            async with asyncio.timeout(self._handshake_timeout):
                await self._expect_success("connected")
                await ws.send(encode_auth(self._key, self._secret), text=True)
                await self._expect_success("authenticated")
                pending = await self._subscribe_all()
        except TimeoutError:
            raise AlpacaStreamError(
                f"handshake timed out after {self._handshake_timeout}s"
            ) from None
        self._ready = True
        if self._lifecycle.state is not ComponentState.STOPPED:
            self._lifecycle.to(ComponentState.RUNNING)
        log.info("alpaca_data_connected", feed=self.name, symbols=len(self._symbols))
        await self._subscribe_added_during_handshake()
        return pending

    async def _connect(self) -> ClientConnection:
        """Open the socket, giving up at once if ``close()`` is called meanwhile."""

        async def open_socket() -> ClientConnection:
            return await connect(
                self.url,
                open_timeout=self._handshake_timeout,
                close_timeout=_CLOSE_TIMEOUT,
                max_size=_MAX_FRAME_BYTES,
                logger=_WIRE_LOGGER,
            )

        connecting = asyncio.ensure_future(open_socket())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({connecting, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not connecting.done():
                connecting.cancel()
        if not self._closing.is_set():
            return connecting.result()
        await asyncio.wait({connecting})
        if not connecting.cancelled() and connecting.exception() is None:
            await connecting.result().close()
        raise _Closing

    async def _recv(self) -> bytes | str:
        if self._ws is None:
            raise _Closing
        return await self._ws.recv(decode=False)

    async def _expect_success(self, expected: str) -> None:
        entries = self._handle_frame(await self._recv())
        first = entries[0] if entries else None
        if isinstance(first, ErrorMessage):
            raise error_from_message(first)
        if not (isinstance(first, SuccessMessage) and first.msg == expected):
            raise AlpacaStreamError(f"handshake: expected {expected!r}, got {first!r}")

    async def _subscribe_all(self) -> list[StreamItem]:
        """Subscribe every symbol and wait for the confirmation."""
        self._confirmed = {}
        symbols = list(self._symbols)
        self._handshake_symbols = frozenset(symbols)
        if not symbols or self._ws is None:
            return []
        await self._ws.send(self._subscribe_frame(symbols), text=True)
        pending: list[StreamItem] = []
        while True:
            for entry in self._handle_frame(await self._recv()):
                if isinstance(entry, ErrorMessage):
                    raise error_from_message(entry)
                if isinstance(entry, Tick | Bar):
                    pending.append(entry)
                elif isinstance(entry, SubscriptionMessage):
                    self._on_control_message(entry)
                    return pending

    async def _subscribe_added_during_handshake(self) -> None:
        """Symbols subscribed while the handshake ran were not in its subscribe frame."""
        missing = [s for s in self._symbols if s not in self._handshake_symbols]
        if missing and self._ws is not None:
            await self._ws.send(self._subscribe_frame(missing), text=True)

    def _subscribe_frame(self, symbols: Sequence[str]) -> bytes:
        return encode_subscribe(
            trades=symbols if "trades" in self._channels else (),
            quotes=symbols if "quotes" in self._channels else (),
            bars=symbols if "bars" in self._channels else (),
        )

    async def _receive(self) -> bytes | str:
        try:
            async with asyncio.timeout(self._silence_timeout):
                return await self._recv()
        except TimeoutError:
            raise AlpacaStreamError(f"connection silent for {self._silence_timeout}s") from None

    async def _discard_connection(self) -> None:
        ws, self._ws = self._ws, None
        self._ready = False
        if ws is not None:
            await ws.close()

    async def _pause(self, delay: float) -> None:
        if delay > 0 and not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)

    def _after_failure(self, err: Exception, minimum: float = 0.0) -> float:
        """Record a lost connection; returns how long to wait before reconnecting."""
        if self._closing.is_set():
            return 0.0
        reason = _describe(err)
        self._counters.last_error = reason
        self._lifecycle.to(ComponentState.DEGRADED, reason)
        delay = max(self._backoff.next_delay(), minimum)
        if isinstance(err, AlpacaAccountError):
            log.error(
                "alpaca_data_account_error",
                feed=self.name,
                reason=reason,
                code=err.code,
                retry_in=round(delay, 3),
            )
        else:
            log.warning(
                "alpaca_data_disconnected", feed=self.name, reason=reason, retry_in=round(delay, 3)
            )
        return delay

    # -- frames ---------------------------------------------------------------------

    def _handle_frame(self, frame: bytes | str) -> list[StreamItem | ControlMessage]:
        """Parse, count and de-duplicate one frame; a malformed frame yields nothing."""
        received = self._clock.now_ns()
        self._counters.last_message_ns = received
        try:
            entries = parse_message_array(frame, received, self._exchange)
        except AlpacaFrameError as err:
            self._counters.parse_errors += 1
            log.warning("alpaca_data_malformed_frame", feed=self.name, error=str(err))
            return []
        self._counters.messages += len(entries)
        return [entry for entry in entries if self._is_new(entry)]

    def _data_items(self, frame: bytes | str) -> list[StreamItem]:
        """The new ticks and bars of a frame; control messages are acted on here."""
        items: list[StreamItem] = []
        for entry in self._handle_frame(frame):
            if isinstance(entry, Tick | Bar):
                items.append(entry)
            else:
                self._on_control_message(entry)
        return items

    def _is_new(self, entry: StreamItem | ControlMessage) -> bool:
        if not isinstance(entry, Tick | Bar):
            return True
        if not self._repeats.is_new(entry):
            self._counters.duplicates += 1
            return False
        if isinstance(entry, Bar):
            self._counters.bars += 1
        else:
            self._counters.ticks += 1
        if not self._had_data:
            self._had_data = True
            self._backoff.reset()
        return True

    def _on_control_message(self, message: ControlMessage) -> None:
        if isinstance(message, SubscriptionMessage):
            self._confirmed = {
                "trades": list(message.trades),
                "quotes": list(message.quotes),
                "bars": list(message.bars),
            }
            log.info("alpaca_data_subscribed", feed=self.name, **self._confirmed)
        elif isinstance(message, ErrorMessage):
            self._counters.last_error = error_from_message(message).reason
            log.error("alpaca_data_server_error", feed=self.name, reason=self._counters.last_error)


def _validate_settings(
    key: str, secret: str, feed: str, base_url: str, channels: Sequence[str]
) -> None:
    if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
        raise ValueError("Alpaca market data needs a non-empty API key id and secret")
    if feed not in FEEDS:
        raise ValueError(f"feed must be one of {FEEDS}, not {feed!r}")
    if not base_url.startswith(("ws://", "wss://")):
        raise ValueError(f"base_url must start with ws:// or wss://, not {base_url!r}")
    unknown = [channel for channel in channels if channel not in CHANNELS]
    if not channels or unknown or isinstance(channels, str):
        raise ValueError(f"channels must be a non-empty subset of {CHANNELS}, got {channels!r}")
