"""Alpaca stock data frames: parsing (documented samples, ns times, bad input), repeats."""

from __future__ import annotations

import json

import msgspec
import pytest

from trademk.domain.market import Bar, Tick, TickKind
from trademk.venues.alpaca.data_dedup import RepeatFilter
from trademk.venues.alpaca.data_schemas import (
    AlpacaFrameError,
    ErrorMessage,
    SubscriptionMessage,
    SuccessMessage,
    encode_auth,
    encode_subscribe,
    parse_message_array,
    parse_rfc3339_ns,
)

# The samples from Alpaca's real-time stock data documentation, verbatim.
DOC_TRADE = (
    '{"T":"t","S":"AAPL","i":52983525029461,"x":"V","p":387.62,"s":100,"c":["@"],'
    '"t":"2021-02-22T15:51:44.208Z","z":"C"}'
)
DOC_QUOTE = (
    '{"T":"q","S":"AAPL","bx":"U","bp":387.46,"bs":1,"ax":"Q","ap":387.67,"as":1,'
    '"c":["R"],"t":"2021-02-22T15:51:44.208Z","z":"C"}'
)
DOC_BAR = (
    '{"T":"b","S":"SPY","o":388.985,"h":389.13,"l":388.975,"c":389.12,"v":49378,'
    '"t":"2021-02-22T19:15:00Z","n":461,"vw":389.062639}'
)
# 2021-02-22T15:51:44Z in seconds since the epoch.
T_154144 = 1_614_009_104
RECEIVED = 1_700_000_000_000_000_000


def test_documented_trade_becomes_trade_tick() -> None:
    [tick] = parse_message_array(f"[{DOC_TRADE}]", RECEIVED)
    assert tick == Tick(
        symbol="AAPL",
        exchange="ALPACA",
        kind=TickKind.TRADE,
        ts=T_154144 * 1_000_000_000 + 208_000_000,
        price=387.62,
        qty=100.0,
        seq=52983525029461,
        received=RECEIVED,
    )


def test_documented_quote_becomes_quote_tick_priced_at_mid() -> None:
    [tick] = parse_message_array(f"[{DOC_QUOTE}]".encode(), RECEIVED, exchange="ALPACA_IEX")
    assert tick == Tick(
        symbol="AAPL",
        exchange="ALPACA_IEX",
        kind=TickKind.QUOTE,
        ts=T_154144 * 1_000_000_000 + 208_000_000,
        price=(387.46 + 387.67) / 2,
        bid=387.46,
        bid_size=1.0,
        ask=387.67,
        ask_size=1.0,
        received=RECEIVED,
    )


def test_documented_bar_becomes_one_minute_bar() -> None:
    [bar] = parse_message_array(f"[{DOC_BAR}]", RECEIVED)
    assert bar == Bar(
        symbol="SPY",
        exchange="ALPACA",
        interval="1m",
        ts=1_614_021_300 * 1_000_000_000,
        open=388.985,
        high=389.13,
        low=388.975,
        close=389.12,
        volume=49378.0,
        vwap=389.062639,
        trades=461,
    )


def test_batched_frame_keeps_order_and_ignores_unknown_types() -> None:
    status = '{"T":"s","S":"AAPL","sc":"H","sm":"Trading Halt","rc":"T12","rm":"x","t":"x","z":"C"}'
    correction = '{"T":"c","S":"AAPL","x":"V","oi":1,"ci":2,"t":"2021-02-22T15:51:44.208Z"}'
    frame = f"[{DOC_BAR},{status},{DOC_TRADE},{correction},{DOC_QUOTE}]"
    kinds = [type(m).__name__ + getattr(m, "kind", "") for m in parse_message_array(frame, 0)]
    assert kinds == ["Bar", "Ticktrade", "Tickquote"]


def test_control_messages_are_returned_as_structs() -> None:
    assert parse_message_array('[{"T":"success","msg":"connected"}]', 0) == [
        SuccessMessage(msg="connected")
    ]
    assert parse_message_array(
        '[{"T":"error","code":406,"msg":"connection limit exceeded"}]', 0
    ) == [ErrorMessage(code=406, msg="connection limit exceeded")]
    sub = (
        '[{"T":"subscription","trades":["AAPL"],"quotes":["AMD","CLDR"],"bars":["*"],'
        '"updatedBars":[],"dailyBars":["VOO"],"statuses":["*"],"lulds":[],'
        '"corrections":["AAPL"],"cancelErrors":["AAPL"]}]'
    )
    [message] = parse_message_array(sub, 0)
    assert isinstance(message, SubscriptionMessage)
    assert (message.trades, message.quotes, message.bars) == (["AAPL"], ["AMD", "CLDR"], ["*"])
    assert (message.daily_bars, message.cancel_errors) == (["VOO"], ["AAPL"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-02-22T15:51:44Z", T_154144 * 10**9),
        ("2021-02-22T15:51:44.208Z", T_154144 * 10**9 + 208_000_000),
        ("2021-02-22T15:51:44.208123Z", T_154144 * 10**9 + 208_123_000),
        ("2021-02-22T15:51:44.208123456Z", T_154144 * 10**9 + 208_123_456),
        ("2021-02-22T15:51:44.000000001Z", T_154144 * 10**9 + 1),
        ("2021-02-22T15:51:44.9999999999Z", T_154144 * 10**9 + 999_999_999),
        ("2021-02-22T10:51:44.5-05:00", T_154144 * 10**9 + 500_000_000),
        ("2021-02-22T16:51:44.5+01:00", T_154144 * 10**9 + 500_000_000),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_rfc3339_timestamps_parse_to_exact_nanoseconds(text: str, expected: int) -> None:
    assert parse_rfc3339_ns(text) == expected


def test_nanosecond_trade_timestamp_survives_exactly() -> None:
    frame = f"[{DOC_TRADE.replace('44.208Z', '44.208123457Z')}]"
    [tick] = parse_message_array(frame, 0)
    assert isinstance(tick, Tick)
    assert tick.ts == 1_614_009_104_208_123_457


@pytest.mark.parametrize(
    "text",
    [
        "2021-02-22 15:51:44Z",
        "2021-02-22T15:51:44",
        "2021-02-30T00:00:00Z",
        "2021-02-22T25:00:00Z",
        "yesterday",
        "2021-02-22T15:51:44.Z",
    ],
)
def test_invalid_timestamps_are_rejected(text: str) -> None:
    with pytest.raises(AlpacaFrameError, match="RFC 3339"):
        parse_rfc3339_ns(text)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        '{"T":"t"}',
        "[1, 2]",
        '[{"S":"AAPL"}]',
        '[{"T":"t","S":"AAPL"}]',
        "[" + DOC_TRADE.replace("387.62", '"387.62"') + "]",
        "[" + DOC_TRADE.replace("387.62", "-1") + "]",
        "[" + DOC_TRADE.replace("2021-02-22T15:51:44.208Z", "bad") + "]",
        "[" + DOC_BAR.replace('"n":461', '"n":"many"') + "]",
        "[" + DOC_QUOTE.replace('"bp":387.46', '"bp":-387.46') + "]",
    ],
)
def test_malformed_frames_raise_frame_error(frame: str) -> None:
    with pytest.raises(AlpacaFrameError):
        parse_message_array(frame, 0)


def test_frame_error_is_a_value_error() -> None:
    assert issubclass(AlpacaFrameError, ValueError)


def test_one_sided_and_empty_quotes() -> None:
    one_sided = DOC_QUOTE.replace('"bp":387.46', '"bp":0').replace('"bs":1', '"bs":0')
    [tick] = parse_message_array(f"[{one_sided}]", 0)
    assert isinstance(tick, Tick)
    assert tick.price == 387.67
    empty = one_sided.replace('"ap":387.67', '"ap":0').replace('"as":1', '"as":0')
    assert parse_message_array(f"[{empty}]", 0) == []


def test_client_frames_match_the_documented_shape() -> None:
    assert json.loads(encode_auth("KEY", "SECRET")) == {
        "action": "auth",
        "key": "KEY",
        "secret": "SECRET",
    }
    frame = encode_subscribe(trades=["AAPL"], quotes=["AMD", "CLDR"], bars=[])
    assert msgspec.json.decode(frame) == {
        "action": "subscribe",
        "trades": ["AAPL"],
        "quotes": ["AMD", "CLDR"],
    }
    with pytest.raises(ValueError, match="action"):
        encode_subscribe(trades=["AAPL"], action="listen")


def test_repeat_filter_drops_repeated_trades_and_bars_only() -> None:
    repeats = RepeatFilter(window=2)
    first = Tick("AAPL", "ALPACA", TickKind.TRADE, 10, 1.0, 1.0, seq=7)
    assert repeats.is_new(first)
    assert not repeats.is_new(msgspec.structs.replace(first, received=99))
    # Another exchange's trade may reuse the id; its time tells them apart.
    assert repeats.is_new(msgspec.structs.replace(first, ts=11))
    assert repeats.is_new(msgspec.structs.replace(first, symbol="MSFT"))
    assert repeats.is_new(Tick("AAPL", "ALPACA", TickKind.TRADE, 12, 1.0, 1.0, seq=8))
    assert repeats.is_new(first)  # forgotten: only the last two trades of AAPL are kept
    quote = Tick("AAPL", "ALPACA", TickKind.QUOTE, 10, 1.0, bid=0.9, ask=1.1)
    assert repeats.is_new(quote) and repeats.is_new(quote)
    minute = Bar("SPY", "ALPACA", "1m", 60, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert repeats.is_new(minute)
    assert not repeats.is_new(minute)
    assert repeats.is_new(msgspec.structs.replace(minute, ts=120))
