"""alpaca-py's ``TradingStream`` run as a task on our event loop, reporting its connection.

``TradingStream.run()`` starts a private event loop with ``asyncio.run``; we
instead run its coroutine ``_run_forever()`` as a task on the caller's loop, so
trade updates are handled on the same loop as everything else and nothing
blocks. The SDK reconnects by itself after a dropped connection; this subclass
adds what the venue needs and the SDK does not expose:

- ``on_listening`` after each (re)connection, once the server confirmed the
  ``trade_updates`` subscription: the venue then fetches what it may have
  missed;
- ``on_disconnect`` when an established connection drops;
- the reconnect delay from our ``ExponentialBackoff`` (the SDK waits 1-30 s);
- keepalive pings that detect a silent server (``ping_interval`` /
  ``ping_timeout``) and a bounded close handshake (``close_timeout``);
- a wire logger that never logs frames (the first one carries the secret).

The overrides use the SDK's underscore hooks (``_dispatch``, ``_consume``,
``_reconnect_delay``, ``_run_forever``) of alpaca-py 0.44.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import websockets

from trademk.config import ConfigError
from trademk.venues.alpaca.alpaca_sdk import TradingStream
from trademk.venues.reconnect import ExponentialBackoff

MessageHandler = Callable[[dict[str, Any]], Awaitable[None]]

# websockets logs every frame at DEBUG, and the authenticate frame holds the
# secret: this connection's logger never goes below INFO, whatever the root is.
_WIRE_LOGGER: Final = logging.getLogger(f"{__name__}.wire")
_WIRE_LOGGER.setLevel(logging.INFO)


def stream_url_for(base_url: str) -> str:
    """The ``trade_updates`` URL for a REST base URL: same host, ``ws(s)://.../stream``."""
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme)
    if scheme is None:
        raise ConfigError(f"Alpaca base URL {base_url!r} must start with http:// or https://")
    return urlunsplit((scheme, parts.netloc, "/stream", "", ""))


class TradeUpdateStream(TradingStream):
    """The ``trade_updates`` stream with connection callbacks; ``launch()``, ``shutdown()``."""

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        url: str,
        on_update: MessageHandler,
        on_listening: Callable[[], None],
        on_disconnect: Callable[[str], None],
        backoff: ExponentialBackoff,
        ping_interval: float = 10.0,
        ping_timeout: float = 20.0,
        close_timeout: float = 2.0,
    ) -> None:
        super().__init__(
            api_key,
            secret_key,
            raw_data=True,
            url_override=url,
            websocket_params={
                "ping_interval": ping_interval,
                "ping_timeout": ping_timeout,
                "close_timeout": close_timeout,
                "max_queue": 1024,
                "logger": _WIRE_LOGGER,
            },
        )
        self._on_listening = on_listening
        self._on_disconnect = on_disconnect
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None
        self.subscribe_trade_updates(on_update)

    def launch(self) -> None:
        """Run the stream as a task on the running loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(
                self._run_forever(),  # type: ignore[no-untyped-call]
                name="alpaca-trade-updates",
            )

    async def shutdown(self) -> None:
        """Stop reconnecting and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await self.close()

    @property
    def connected(self) -> bool:
        return bool(self._running and self._ws is not None)

    def _reconnect_delay(self, retries: int) -> float:
        self._backoff.attempt = max(0, retries - 1)
        return self._backoff.next_delay()

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if isinstance(msg, dict) and msg.get("stream") == "listening":
            if "trade_updates" in (msg.get("data") or {}).get("streams", []):
                self._on_listening()
            return
        await super()._dispatch(msg)

    async def _consume(self) -> None:
        try:
            await super()._consume()  # type: ignore[no-untyped-call]
        except websockets.WebSocketException as err:
            self._on_disconnect(f"{type(err).__name__}: {err}")
            raise
