"""parse_frame on Binance's documented payloads and on malformed input."""

from __future__ import annotations

import json

import pytest

from trademk.domain.market import Tick, TickKind
from trademk.venues.binance.schemas import BinanceFrameError, parse_frame, stream_names

RECEIVED_NS = 1_700_000_000_123_456_789

# Binance spot docs, "Trade Streams" payload (current form, and the 2023 form that
# still carried buyer/seller order ids "b"/"a").
DOC_TRADE = (
    '{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100",'
    '"T":1672515782136,"m":true,"M":true}'
)
DOC_TRADE_2023 = (
    '{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100",'
    '"b":88,"a":50,"T":1672515782136,"m":true,"M":true}'
)
# "Individual Symbol Book Ticker Streams" payload, as in the docs and the brief.
DOC_BOOK_TICKER = (
    '{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",'
    '"a":"25.36520000","A":"40.66000000"}'
)
BRIEF_BOOK_TICKER = (
    '{"u":400900217,"s":"BNBUSDT","b":"25.3519","B":"31.21","a":"25.3652","A":"40.66"}'
)


def combined(stream: str, data: str) -> str:
    return f'{{"stream":"{stream}","data":{data}}}'


@pytest.mark.parametrize("payload", [DOC_TRADE, DOC_TRADE_2023])
def test_documented_trade_becomes_trade_tick(payload: str) -> None:
    tick = parse_frame(combined("bnbbtc@trade", payload), RECEIVED_NS)

    assert tick == Tick(
        symbol="BNBBTC",
        exchange="BINANCE",
        kind=TickKind.TRADE,
        ts=1672515782136 * 1_000_000,
        price=0.001,
        qty=100.0,
        seq=12345,
        received=RECEIVED_NS,
    )


@pytest.mark.parametrize("payload", [DOC_BOOK_TICKER, BRIEF_BOOK_TICKER])
def test_documented_book_ticker_becomes_quote_stamped_with_receive_time(payload: str) -> None:
    tick = parse_frame(combined("bnbusdt@bookTicker", payload), RECEIVED_NS, exchange="BINANCE")

    assert tick is not None
    assert tick.kind is TickKind.QUOTE
    assert tick.symbol == "BNBUSDT"
    assert tick.ts == RECEIVED_NS
    assert tick.received == RECEIVED_NS
    assert (tick.bid, tick.bid_size, tick.ask, tick.ask_size) == (25.3519, 31.21, 25.3652, 40.66)
    assert tick.price == pytest.approx((25.3519 + 25.3652) / 2)
    assert tick.seq == 400900217
    assert tick.qty == 0.0


def test_bytes_and_text_frames_parse_identically() -> None:
    frame = combined("bnbbtc@trade", DOC_TRADE)

    assert parse_frame(frame.encode(), RECEIVED_NS) == parse_frame(frame, RECEIVED_NS)


def test_exchange_name_is_carried_through() -> None:
    tick = parse_frame(combined("bnbbtc@trade", DOC_TRADE), RECEIVED_NS, exchange="BINANCE_US")

    assert tick is not None
    assert tick.exchange == "BINANCE_US"


def test_prices_keep_full_decimal_precision_as_float() -> None:
    data = json.loads(DOC_TRADE) | {"p": "43123.45678901", "q": "0.00012345"}
    tick = parse_frame(combined("btcusdt@trade", json.dumps(data)), RECEIVED_NS)

    assert tick is not None
    assert (tick.price, tick.qty) == (float("43123.45678901"), float("0.00012345"))


@pytest.mark.parametrize(
    ("stream", "data"),
    [
        ("bnbbtc@aggTrade", '{"e":"aggTrade","E":1,"s":"BNBBTC","a":1,"p":"1","q":"1"}'),
        ("bnbbtc@kline_1m", '{"e":"kline","E":1,"s":"BNBBTC","k":{}}'),
        ("bnbbtc@depth5", '{"lastUpdateId":160,"bids":[],"asks":[]}'),
    ],
)
def test_other_stream_types_return_none(stream: str, data: str) -> None:
    assert parse_frame(combined(stream, data), RECEIVED_NS) is None


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "not json",
        "[1, 2, 3]",
        '{"result":null,"id":1}',
        '{"stream":"bnbbtc@trade"}',
        '{"data":' + DOC_TRADE + "}",
        '{"stream":42,"data":' + DOC_TRADE + "}",
        '{"stream":"bnbbtc@trade","data":' + DOC_TRADE[:-10],
    ],
    ids=["empty", "text", "array", "subscribe-reply", "no-data", "no-stream", "int-stream", "cut"],
)
def test_malformed_envelope_raises_frame_error(frame: str) -> None:
    with pytest.raises(BinanceFrameError):
        parse_frame(frame, RECEIVED_NS)


@pytest.mark.parametrize(
    "change",
    [
        {"p": "abc"},
        {"p": "-1.5"},
        {"p": "0"},
        {"p": "NaN"},
        {"q": "inf"},
        {"q": "-3"},
        {"e": "aggTrade"},
        {"t": [1]},
        {"T": "yesterday"},
        {"s": None},
    ],
    ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))}",
)
def test_bad_trade_fields_raise_frame_error(change: dict[str, object]) -> None:
    data = json.loads(DOC_TRADE) | change
    with pytest.raises(BinanceFrameError):
        parse_frame(combined("bnbbtc@trade", json.dumps(data)), RECEIVED_NS)


@pytest.mark.parametrize("missing", ["u", "s", "b", "B", "a", "A"])
def test_book_ticker_missing_field_raises_frame_error(missing: str) -> None:
    data = json.loads(DOC_BOOK_TICKER)
    del data[missing]
    with pytest.raises(BinanceFrameError, match=missing):
        parse_frame(combined("bnbusdt@bookTicker", json.dumps(data)), RECEIVED_NS)


def test_frame_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_frame("{}", RECEIVED_NS)


def test_stream_names_are_lowercase_trade_and_book_ticker() -> None:
    assert stream_names("BTCUSDT") == ("btcusdt@trade", "btcusdt@bookTicker")
