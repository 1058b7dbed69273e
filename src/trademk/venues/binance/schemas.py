"""Binance spot combined-stream wire schemas and their conversion to domain Ticks.

A combined-stream frame is ``{"stream": "<name>", "data": <payload>}``. The
envelope is decoded with ``data`` left as raw JSON, the stream-name suffix picks
the payload schema, and a second typed decode turns the payload into a struct.
Binance sends prices and quantities as JSON strings; the payload decoders run in
msgspec's lax mode, which parses those strings straight into floats inside the
decoder (same values as ``float(text)``) and rejects anything that is not a
finite decimal number.
"""

from __future__ import annotations

import sys
from typing import Annotated, Final, Literal

import msgspec

from trademk.domain.market import NANOS_PER_MILLI, Tick, TickKind

DEFAULT_EXCHANGE: Final = "BINANCE"
TRADE_SUFFIX: Final = "@trade"
BOOK_TICKER_SUFFIX: Final = "@bookTicker"

NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0.0, le=sys.float_info.max)]


class BinanceFrameError(ValueError):
    """A frame that is not a well-formed Binance combined-stream message."""


class StreamEnvelope(msgspec.Struct, frozen=True):
    """The combined-stream wrapper; ``data`` stays undecoded until dispatch."""

    stream: str
    data: msgspec.Raw


class TradePayload(msgspec.Struct, frozen=True):
    """``<symbol>@trade`` payload (``e`` = "trade")."""

    event_type: Literal["trade"] = msgspec.field(name="e")
    event_time_ms: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    trade_id: int = msgspec.field(name="t")
    price: PositiveFloat = msgspec.field(name="p")
    quantity: NonNegativeFloat = msgspec.field(name="q")
    trade_time_ms: int = msgspec.field(name="T")
    buyer_is_maker: bool = msgspec.field(name="m")


class BookTickerPayload(msgspec.Struct, frozen=True):
    """``<symbol>@bookTicker`` payload; it has no event type and no event time."""

    update_id: int = msgspec.field(name="u")
    symbol: str = msgspec.field(name="s")
    bid_price: NonNegativeFloat = msgspec.field(name="b")
    bid_qty: NonNegativeFloat = msgspec.field(name="B")
    ask_price: NonNegativeFloat = msgspec.field(name="a")
    ask_qty: NonNegativeFloat = msgspec.field(name="A")


_ENVELOPE_DECODER: Final = msgspec.json.Decoder(StreamEnvelope)
_TRADE_DECODER: Final = msgspec.json.Decoder(TradePayload, strict=False)
_BOOK_TICKER_DECODER: Final = msgspec.json.Decoder(BookTickerPayload, strict=False)


def parse_frame(
    frame: bytes | str, received_ns: int, exchange: str = DEFAULT_EXCHANGE
) -> Tick | None:
    """Turn one combined-stream frame into a Tick.

    Trades become ``TickKind.TRADE`` with ``ts`` = trade time ``T`` and ``seq`` =
    trade id. Book tickers carry no venue time, so they become ``TickKind.QUOTE``
    stamped with ``received_ns``, ``price`` = bid/ask mid and ``seq`` = book
    update id. Streams of other types return None. Raises ``BinanceFrameError``
    for anything malformed.
    """
    try:
        envelope = _ENVELOPE_DECODER.decode(frame)
        stream = envelope.stream
        if stream.endswith(TRADE_SUFFIX):
            trade = _TRADE_DECODER.decode(envelope.data)
            return Tick(
                symbol=trade.symbol,
                exchange=exchange,
                kind=TickKind.TRADE,
                ts=trade.trade_time_ms * NANOS_PER_MILLI,
                price=trade.price,
                qty=trade.quantity,
                seq=trade.trade_id,
                received=received_ns,
            )
        if stream.endswith(BOOK_TICKER_SUFFIX):
            book = _BOOK_TICKER_DECODER.decode(envelope.data)
            bid = book.bid_price
            ask = book.ask_price
            return Tick(
                symbol=book.symbol,
                exchange=exchange,
                kind=TickKind.QUOTE,
                ts=received_ns,
                price=(bid + ask) / 2.0,
                bid=bid,
                bid_size=book.bid_qty,
                ask=ask,
                ask_size=book.ask_qty,
                seq=book.update_id,
                received=received_ns,
            )
    except msgspec.DecodeError as err:  # ValidationError is a DecodeError subclass
        raise BinanceFrameError(f"malformed Binance frame: {err}") from err
    return None


def stream_names(symbol: str) -> tuple[str, str]:
    """The trade and book-ticker stream names for a symbol (Binance wants lowercase)."""
    lowered = symbol.lower()
    return f"{lowered}{TRADE_SUFFIX}", f"{lowered}{BOOK_TICKER_SUFFIX}"
