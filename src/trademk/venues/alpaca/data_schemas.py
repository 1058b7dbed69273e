"""Wire schemas of Alpaca's real-time stock data stream (``/v2/{iex|sip}``).

Every server frame is a JSON array of messages, each tagged by ``T``: control
messages (``success``, ``error``, ``subscription``) and data messages (``t``
trade, ``q`` quote, ``b`` minute bar). Data messages become domain ``Tick`` and
``Bar`` objects here, at the edge; message types we do not consume (updated and
daily bars, statuses, LULDs, corrections, cancel errors, ...) are ignored.

Timestamps are RFC 3339 strings that may carry nanoseconds; Python's datetime
keeps only microseconds, so the fraction is parsed by hand into integer ns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import msgspec

from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick, TickKind

DEFAULT_EXCHANGE: Final = "ALPACA"
BAR_INTERVAL: Final = "1m"
_EXCERPT_CHARS: Final = 200


# 402 auth failed, 405 symbol limit exceeded, 406 connection limit exceeded,
# 409 insufficient subscription, 410 invalid subscribe action for this feed.
ACCOUNT_ERROR_CODES: Final = frozenset({402, 405, 406, 409, 410})


class AlpacaFrameError(ValueError):
    """A frame that is not a well-formed Alpaca message array."""


class AlpacaStreamError(Exception):
    """A server error message or a broken handshake; retried with backoff."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class AlpacaAccountError(AlpacaStreamError):
    """An account error (``ACCOUNT_ERROR_CODES``) that reconnecting at once cannot cure."""


class SuccessMessage(msgspec.Struct, frozen=True, tag_field="T", tag="success"):
    """``{"T":"success","msg":"connected"|"authenticated"}``."""

    msg: str


class ErrorMessage(msgspec.Struct, frozen=True, tag_field="T", tag="error"):
    """``{"T":"error","code":402,"msg":"auth failed"}``."""

    code: int
    msg: str


class SubscriptionMessage(
    msgspec.Struct, frozen=True, tag_field="T", tag="subscription", kw_only=True
):
    """The server's view of all current subscriptions, sent after each (un)subscribe."""

    trades: list[str] = []
    quotes: list[str] = []
    bars: list[str] = []
    updated_bars: list[str] = msgspec.field(default_factory=list, name="updatedBars")
    daily_bars: list[str] = msgspec.field(default_factory=list, name="dailyBars")
    statuses: list[str] = []
    lulds: list[str] = []
    corrections: list[str] = []
    cancel_errors: list[str] = msgspec.field(default_factory=list, name="cancelErrors")


ControlMessage = SuccessMessage | ErrorMessage | SubscriptionMessage


def error_from_message(message: ErrorMessage) -> AlpacaStreamError:
    """The exception for a server error message, reason formatted ``"auth failed (402)"``."""
    reason = f"{message.msg} ({message.code})"
    if message.code in ACCOUNT_ERROR_CODES:
        return AlpacaAccountError(reason, message.code)
    return AlpacaStreamError(reason, message.code)


class TradeMessage(msgspec.Struct, frozen=True, tag_field="T", tag="t", kw_only=True):
    """A trade print."""

    symbol: str = msgspec.field(name="S")
    trade_id: int = msgspec.field(name="i")
    exchange_code: str = msgspec.field(default="", name="x")
    price: float = msgspec.field(name="p")
    size: float = msgspec.field(name="s")
    conditions: list[str] = msgspec.field(default_factory=list, name="c")
    timestamp: str = msgspec.field(name="t")
    tape: str = msgspec.field(default="", name="z")

    def to_tick(self, exchange: str, received_ns: int) -> Tick:
        """The domain trade tick; ``seq`` is Alpaca's trade id."""
        if self.price <= 0 or self.size < 0:
            raise AlpacaFrameError(
                f"trade {self.symbol} #{self.trade_id}: price must be > 0 and size >= 0, "
                f"got p={self.price} s={self.size}"
            )
        return Tick(
            symbol=self.symbol,
            exchange=exchange,
            kind=TickKind.TRADE,
            ts=parse_rfc3339_ns(self.timestamp),
            price=self.price,
            qty=self.size,
            seq=self.trade_id,
            received=received_ns,
        )


class QuoteMessage(msgspec.Struct, frozen=True, tag_field="T", tag="q", kw_only=True):
    """A top-of-book quote (NBBO on SIP, IEX book on IEX)."""

    symbol: str = msgspec.field(name="S")
    bid_exchange: str = msgspec.field(default="", name="bx")
    bid_price: float = msgspec.field(name="bp")
    bid_size: float = msgspec.field(name="bs")
    ask_exchange: str = msgspec.field(default="", name="ax")
    ask_price: float = msgspec.field(name="ap")
    ask_size: float = msgspec.field(name="as")
    conditions: list[str] = msgspec.field(default_factory=list, name="c")
    timestamp: str = msgspec.field(name="t")
    tape: str = msgspec.field(default="", name="z")

    def to_tick(self, exchange: str, received_ns: int) -> Tick | None:
        """The domain quote tick with ``price`` = mid, or None for an empty book.

        A one-sided quote (the other side's price is 0) is priced at the side
        that is present; a quote with neither side carries no price and is
        skipped rather than published as a price of 0.
        """
        if min(self.bid_price, self.ask_price, self.bid_size, self.ask_size) < 0:
            raise AlpacaFrameError(f"quote {self.symbol}: negative price or size")
        if self.bid_price > 0 and self.ask_price > 0:
            price = (self.bid_price + self.ask_price) / 2
        else:
            price = self.bid_price or self.ask_price
        if price == 0:
            return None
        return Tick(
            symbol=self.symbol,
            exchange=exchange,
            kind=TickKind.QUOTE,
            ts=parse_rfc3339_ns(self.timestamp),
            price=price,
            bid=self.bid_price,
            bid_size=self.bid_size,
            ask=self.ask_price,
            ask_size=self.ask_size,
            received=received_ns,
        )


class BarMessage(msgspec.Struct, frozen=True, tag_field="T", tag="b", kw_only=True):
    """A one-minute bar; ``t`` is the bar's open time."""

    symbol: str = msgspec.field(name="S")
    open: float = msgspec.field(name="o")
    high: float = msgspec.field(name="h")
    low: float = msgspec.field(name="l")
    close: float = msgspec.field(name="c")
    volume: float = msgspec.field(name="v")
    timestamp: str = msgspec.field(name="t")
    trade_count: int = msgspec.field(name="n")
    vwap: float = msgspec.field(name="vw")

    def to_bar(self, exchange: str) -> Bar:
        """The domain 1m bar."""
        if self.low > self.high or self.volume < 0 or self.trade_count < 0:
            raise AlpacaFrameError(
                f"bar {self.symbol}: inconsistent values (l={self.low} h={self.high} "
                f"v={self.volume} n={self.trade_count})"
            )
        return Bar(
            symbol=self.symbol,
            exchange=exchange,
            interval=BAR_INTERVAL,
            ts=parse_rfc3339_ns(self.timestamp),
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            vwap=self.vwap,
            trades=self.trade_count,
        )


_KnownMessage = (
    TradeMessage | QuoteMessage | BarMessage | SuccessMessage | ErrorMessage | SubscriptionMessage
)


class _TypeOnly(msgspec.Struct):
    T: str


_ALL_KNOWN_DECODER: Final = msgspec.json.Decoder(list[_KnownMessage])
_RAW_ARRAY_DECODER: Final = msgspec.json.Decoder(list[msgspec.Raw])
_TYPE_DECODER: Final = msgspec.json.Decoder(_TypeOnly)
_DECODER_BY_TYPE: Final[dict[str, msgspec.json.Decoder[_KnownMessage]]] = {
    "t": msgspec.json.Decoder(TradeMessage),
    "q": msgspec.json.Decoder(QuoteMessage),
    "b": msgspec.json.Decoder(BarMessage),
    "success": msgspec.json.Decoder(SuccessMessage),
    "error": msgspec.json.Decoder(ErrorMessage),
    "subscription": msgspec.json.Decoder(SubscriptionMessage),
}


def _excerpt(frame: bytes | str) -> str:
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."


def decode_messages(frame: bytes | str) -> list[_KnownMessage]:
    """Decode a frame into its known wire messages, skipping unknown ``T`` types.

    Raises ``AlpacaFrameError`` when the frame is not a JSON array of objects
    each carrying a string ``T``, or when a known message lacks a field or has
    one of the wrong type.
    """
    try:
        return _ALL_KNOWN_DECODER.decode(frame)
    except msgspec.DecodeError:
        pass  # an unknown message type or a malformed frame: sort them out one by one
    try:
        elements = _RAW_ARRAY_DECODER.decode(frame)
    except msgspec.DecodeError as err:
        raise AlpacaFrameError(f"frame is not a JSON array ({err}): {_excerpt(frame)}") from err
    messages: list[_KnownMessage] = []
    for element in elements:
        try:
            kind = _TYPE_DECODER.decode(element).T
            decoder = _DECODER_BY_TYPE.get(kind)
            if decoder is not None:
                messages.append(decoder.decode(element))
        except msgspec.DecodeError as err:
            raise AlpacaFrameError(
                f"malformed message ({err}): {_excerpt(bytes(element))}"
            ) from err
    return messages


def parse_message_array(
    frame: bytes | str, received_ns: int, exchange: str = DEFAULT_EXCHANGE
) -> list[Tick | Bar | ControlMessage]:
    """Parse one server frame into domain ticks/bars and control messages, in order.

    Trades become ``Tick`` kind TRADE (``seq`` = trade id), quotes ``Tick`` kind
    QUOTE (``price`` = bid/ask mid), bars ``Bar`` with interval ``1m``. Control
    messages are returned as their structs. Unknown message types are ignored.
    Raises ``AlpacaFrameError`` for a malformed frame, field or timestamp.
    """
    out: list[Tick | Bar | ControlMessage] = []
    for message in decode_messages(frame):
        if isinstance(message, TradeMessage):
            out.append(message.to_tick(exchange, received_ns))
        elif isinstance(message, QuoteMessage):
            tick = message.to_tick(exchange, received_ns)
            if tick is not None:
                out.append(tick)
        elif isinstance(message, BarMessage):
            out.append(message.to_bar(exchange))
        else:
            out.append(message)
    return out


_RFC3339_RE: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))\Z"
)


@functools.lru_cache(maxsize=4096)
def _utc_epoch_seconds(date_part: str, time_part: str) -> int:
    """Whole seconds since the epoch for ``YYYY-MM-DD`` and ``HH:MM:SS`` (UTC)."""
    value = datetime.fromisoformat(f"{date_part}T{time_part}+00:00")
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86400 + delta.seconds


def parse_rfc3339_ns(text: str) -> int:
    """Integer nanoseconds since the epoch for an RFC 3339 timestamp, exactly.

    Fractions longer than nine digits are truncated to nanoseconds.
    """
    match = _RFC3339_RE.match(text)
    if match is None:
        raise AlpacaFrameError(f"invalid RFC 3339 timestamp {text!r}")
    date_part, time_part, fraction, sign, off_hours, off_minutes = match.groups()
    try:
        seconds = _utc_epoch_seconds(date_part, time_part)
    except ValueError as err:
        raise AlpacaFrameError(f"invalid RFC 3339 timestamp {text!r}: {err}") from err
    if sign is not None:
        offset = int(off_hours) * 3600 + int(off_minutes) * 60
        seconds -= offset if sign == "+" else -offset
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    return seconds * NANOS_PER_SECOND + nanos


def encode_auth(key: str, secret: str) -> bytes:
    """The ``auth`` action frame. Never log its result: it holds the secret."""
    return msgspec.json.encode({"action": "auth", "key": key, "secret": secret})


def encode_subscribe(
    *,
    trades: Sequence[str] = (),
    quotes: Sequence[str] = (),
    bars: Sequence[str] = (),
    action: str = "subscribe",
) -> bytes:
    """A ``subscribe`` (or ``unsubscribe``) frame naming only the non-empty channels."""
    if action not in ("subscribe", "unsubscribe"):
        raise ValueError(f"action must be subscribe or unsubscribe, not {action!r}")
    message: dict[str, str | list[str]] = {"action": action}
    for channel, symbols in (("trades", trades), ("quotes", quotes), ("bars", bars)):
        if symbols:
            message[channel] = list(symbols)
    return msgspec.json.encode(message)
