"""WebSocket ``/ws``: live ticks, bars, orders, fills, positions, portfolio, alerts, strategies.

The handshake is authenticated like every route (viewer role at least): an
``Authorization: Bearer`` header, ``X-API-Key``, or ``?token=`` for browsers.
A refused handshake is closed with 1008 before it is accepted.

Each client owns one bounded bus subscription. A sender task drains it into
the socket; when the client reads too slowly the subscription drops its oldest
messages and the next message is preceded by ``{"type": "dropped", "count":
n}``. Nothing the client does can stall the publishers or other clients.
Replies to the client's own requests and heartbeats go through a separate
short queue and are never dropped. docs/api-websocket.md describes the protocol.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import orjson
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from trademk.api.security import ViewerDep
from trademk.engine.clock import utc_now
from trademk.engine.market_data import UnknownSymbolError
from trademk.security.principal import Principal
from trademk.wiring.live import ClientTopics, LiveServices, WebSocketOptions

log = structlog.get_logger(__name__)

router = APIRouter(tags=["websocket"])

FIXED_CHANNELS: Final = {
    "orders": "order",
    "fills": "fill",
    "positions": "position",
    "portfolio": "portfolio",
    "alerts": "alert",
    "strategies": "strategy",
}
BAR_INTERVALS: Final = ("1m",)
CONTROL_BACKLOG_LIMIT: Final = 256
CHANNEL_HELP: Final = (
    "use ticks:SYMBOL, bars:SYMBOL:1m, orders, fills, positions, portfolio, alerts or strategies"
)


class ChannelError(ValueError):
    """A channel name the server does not offer; the message says why."""


class PolicyViolation(Exception):
    """The client broke the protocol badly enough to be disconnected."""


def canonical_channel(name: object, known_symbol: Callable[[str], str]) -> str:
    """The channel's canonical name (symbols upper-cased), or ChannelError."""
    if not isinstance(name, str) or not name.strip():
        raise ChannelError(f"a channel is a non-empty string, got {name!r}")
    text = name.strip()
    if text.lower() in FIXED_CHANNELS:
        return text.lower()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    try:
        if kind == "ticks" and rest and ":" not in rest:
            return f"ticks:{known_symbol(rest)}"
        if kind == "bars":
            symbol, _, interval = rest.partition(":")
            if symbol and interval in BAR_INTERVALS:
                return f"bars:{known_symbol(symbol)}:{interval}"
            if symbol and interval:
                raise ChannelError(f"channel {name!r}: bars come in {', '.join(BAR_INTERVALS)}")
    except UnknownSymbolError as err:
        raise ChannelError(f"channel {name!r}: {err}") from None
    raise ChannelError(f"unknown channel {name!r}: {CHANNEL_HELP}")


def message_type(channel: str) -> str:
    """The ``type`` of data messages on ``channel``."""
    fixed = FIXED_CHANNELS.get(channel)
    if fixed is not None:
        return fixed
    return "tick" if channel.startswith("ticks:") else "bar"


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(message: Mapping[str, Any]) -> str:
    return orjson.dumps(message, default=_json_default).decode()


class ClientSession:
    """One connected client: its subscription, its requests and its sender."""

    def __init__(
        self,
        websocket: WebSocket,
        principal: Principal,
        live: LiveServices,
        topics: ClientTopics,
        known_symbol: Callable[[str], str],
    ) -> None:
        self.websocket = websocket
        self.principal = principal
        self.live = live
        self.options: WebSocketOptions = live.options
        self.topics = topics
        self.known_symbol = known_symbol
        self.subscription = topics.open(self.options.queue_capacity)
        self.sent = 0
        self._control: collections.deque[dict[str, Any]] = collections.deque()
        self._wake = asyncio.Event()
        self._waiting: asyncio.Task[tuple[str, Mapping[str, Any]]] | None = None

    async def run(self) -> None:
        """Serve the client until it disconnects (or breaks the protocol)."""
        sender = asyncio.create_task(self._send_forever(), name="ws-sender")
        receiver = asyncio.create_task(self._receive_forever(), name="ws-receiver")
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if isinstance(error, PolicyViolation):
                    await self._close(status.WS_1008_POLICY_VIOLATION, str(error))
                elif error is not None and not _is_disconnect(error):
                    log.warning("websocket session failed", error=repr(error))
        finally:
            if self._waiting is not None:
                self._waiting.cancel()
            for worker in (sender, receiver):
                worker.cancel()
            for worker in (sender, receiver):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker
            self.subscription.close()

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code=code, reason=reason[:120])

    # ------------------------------------------------------------------ requests
    async def _receive_forever(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
            await self.handle(text)

    async def handle(self, text: str) -> None:
        """Answer one client message."""
        limit = self.options.max_message_bytes
        if len(text) > limit:
            self.reply_error(f"message too long: at most {limit} characters")
            return
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError as err:
            self.reply_error(f"not valid JSON: {err}")
            return
        if not isinstance(request, dict):
            self.reply_error(
                'send a JSON object such as {"action": "subscribe", "channels": [...]}'
            )
            return
        action = request.get("action")
        if action == "ping":
            self.reply({"type": "pong", "ts": utc_now(self.live.clock).isoformat()}, request)
        elif action in ("subscribe", "unsubscribe"):
            await self._change_channels(action, request)
        else:
            self.reply_error(
                f"unknown action {action!r}: use subscribe, unsubscribe or ping", request
            )

    def _channels_of(self, request: Mapping[str, Any]) -> list[str] | None:
        channels = request.get("channels")
        if not isinstance(channels, list) or not channels:
            self.reply_error('"channels" must be a non-empty list of channel names', request)
            return None
        names: list[str] = []
        errors: list[str] = []
        for channel in channels:
            try:
                name = canonical_channel(channel, self.known_symbol)
            except ChannelError as err:
                errors.append(str(err))
            else:
                if name not in names:
                    names.append(name)
        if errors:
            self.reply_error("; ".join(errors), request)
            return None
        return names

    async def _change_channels(self, action: str, request: Mapping[str, Any]) -> None:
        names = self._channels_of(request)
        if names is None:
            return
        subscription = self.subscription
        if action == "unsubscribe":
            self.topics.remove(subscription, names)
            self.reply(self._listing("unsubscribed", names), request)
            return
        new = [name for name in names if name not in subscription.topics]
        if len(subscription.topics) + len(new) > self.options.max_channels:
            self.reply_error(
                f"at most {self.options.max_channels} channels per connection", request
            )
            return
        try:
            await self.topics.add(subscription, new)
        except Exception as err:
            # The local subscription stands; only the relay from other processes failed.
            log.warning("channel relay unavailable", channels=new, error=str(err))
            self.reply_error(f"channels {new} work locally only for now: {err}", request)
        self.reply(self._listing("subscribed", names), request)
        if "portfolio" in new:
            self._send_portfolio_now()

    def _listing(self, kind: str, names: list[str]) -> dict[str, Any]:
        return {"type": kind, "channels": names, "active": sorted(self.subscription.topics)}

    def _send_portfolio_now(self) -> None:
        snapshot = self.live.portfolio.snapshot()
        if snapshot is not None:
            data = self.live.portfolio.stamped(snapshot)
            self.reply({"type": "portfolio", "channel": "portfolio", "data": data})

    def reply(self, message: dict[str, Any], request: Mapping[str, Any] | None = None) -> None:
        """Queue a message for the client ahead of channel data (never dropped)."""
        if request is not None and isinstance(request.get("id"), str | int):
            message["id"] = request["id"]
        if len(self._control) >= CONTROL_BACKLOG_LIMIT:
            raise PolicyViolation("too many requests while not reading the replies")
        self._control.append(message)
        self._wake.set()

    def reply_error(self, text: str, request: Mapping[str, Any] | None = None) -> None:
        self.reply({"type": "error", "message": text}, request)

    # -------------------------------------------------------------------- sender
    async def _send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        beat = self.options.heartbeat_seconds
        next_beat = loop.time() + beat
        while True:
            if self._control:
                await self._send(self._control.popleft())
                continue
            now = loop.time()
            if now >= next_beat:
                await self._send({"type": "heartbeat", "ts": utc_now(self.live.clock).isoformat()})
                next_beat = now + beat
                continue
            item = await self._next_item()
            if item is None:
                await self._idle(next_beat - now)
                continue
            await self._send_data(*item)

    async def _next_item(self) -> tuple[str, Mapping[str, Any]] | None:
        """The next queued message, in order, without waiting for one."""
        waiting = self._waiting
        if waiting is not None:
            if not waiting.done():
                return None
            self._waiting = None
            return waiting.result()
        if self.subscription.pending():
            return await self.subscription.get()  # returns at once: the queue is not empty
        return None

    async def _send_data(self, topic: str, payload: Mapping[str, Any]) -> None:
        if topic not in self.subscription.topics:
            return  # queued before the client unsubscribed
        dropped = self.subscription.take_dropped()
        if dropped:
            await self._send({"type": "dropped", "count": dropped})
        await self._send({"type": message_type(topic), "channel": topic, "data": payload})

    async def _idle(self, wait_s: float) -> None:
        """Wait for channel data, a reply to send, or the heartbeat time."""
        if self._waiting is None:
            self._waiting = asyncio.create_task(self.subscription.get())
        self._wake.clear()
        woken = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait(
                {self._waiting, woken}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            woken.cancel()

    async def _send(self, message: Mapping[str, Any]) -> None:
        await self.websocket.send_text(encode(message))
        self.sent += 1


def _is_disconnect(error: BaseException) -> bool:
    # Starlette raises WebSocketDisconnect, or RuntimeError once the socket is closed.
    return isinstance(error, WebSocketDisconnect | RuntimeError | OSError)


def _report_clients(platform: Any, live: LiveServices) -> None:
    metrics = getattr(platform, "metrics", None)
    if metrics is not None and hasattr(metrics, "set_websocket_clients"):
        metrics.set_websocket_clients(len(live.connections))


@router.websocket("/ws")
async def live_stream(websocket: WebSocket, principal: ViewerDep) -> None:
    """Subscribe to live channels; see docs/api-websocket.md for the protocol."""
    platform = websocket.app.state.platform
    live: LiveServices = platform.live
    await websocket.accept()
    session = ClientSession(
        websocket, principal, live, ClientTopics(platform.bus), platform.market_data.known
    )
    live.connections.add(session)
    _report_clients(platform, live)
    try:
        await session.run()
    finally:
        live.connections.discard(session)
        _report_clients(platform, live)
