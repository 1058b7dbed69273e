"""Alpaca trading wire ↔ domain: orders, trade updates, positions, account, symbols, requests."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests

from trademk.domain.errors import RateLimitedError, RejectedError
from trademk.domain.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from trademk.venues.alpaca.alpaca_sdk import APIError
from trademk.venues.alpaca.symbols import from_alpaca_symbol, to_alpaca_symbol
from trademk.venues.alpaca.trading_rest import (
    AmbiguousOutcome,
    DuplicateClientOrderId,
    NotFoundError,
    translate_api_error,
)
from trademk.venues.alpaca.trading_schemas import (
    ORDER_STATUS,
    AlpacaWireError,
    account_report,
    build_order_request,
    domain_status,
    order_report,
    parse_order,
    parse_orders,
    parse_trade_update,
    position_reports,
)

# The order object of Alpaca's "Orders" documentation (a notional market order), verbatim.
DOC_ORDER = json.loads(
    """{
  "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
  "client_order_id": "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4",
  "created_at": "2021-03-16T18:38:01.942282Z",
  "updated_at": "2021-03-16T18:38:01.942282Z",
  "submitted_at": "2021-03-16T18:38:01.937734Z",
  "filled_at": null, "expired_at": null, "canceled_at": null, "failed_at": null,
  "replaced_at": null, "replaced_by": null, "replaces": null,
  "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
  "symbol": "AAPL", "asset_class": "us_equity", "notional": "500", "qty": null,
  "filled_qty": "0", "filled_avg_price": null, "order_class": "", "order_type": "market",
  "type": "market", "side": "buy", "time_in_force": "day", "limit_price": null,
  "stop_price": null, "status": "accepted", "extended_hours": false, "legs": null,
  "trail_percent": null, "trail_price": null, "hwm": null
}"""
)
SUBMITTED_NS = 1_615_919_881_937_734_000
UPDATED_NS = 1_615_919_881_942_282_000


def crypto_order(**changes: Any) -> dict[str, Any]:
    raw = {
        **DOC_ORDER,
        "symbol": "BTC/USD",
        "asset_class": "crypto",
        "notional": None,
        "qty": "0.5",
        "type": "limit",
        "order_type": "limit",
        "limit_price": "60000",
        "time_in_force": "gtc",
        "status": "new",
    }
    return {**raw, **changes}


def domain_order(symbol: str = "BTCUSDT", **changes: Any) -> Order:
    fields: dict[str, Any] = {
        "client_order_id": "c-1",
        "symbol": symbol,
        "side": OrderSide.BUY,
        "type": OrderType.LIMIT,
        "qty": Decimal("0.5"),
        "venue": "alpaca",
        "created_ns": 1,
        "limit_price": Decimal("60000.5"),
        "time_in_force": TimeInForce.GTC,
        **changes,
    }
    return Order(**fields)


# -- orders -----------------------------------------------------------------------------


def test_the_documented_order_parses_into_a_report() -> None:
    report = order_report(parse_order(DOC_ORDER))

    assert report.client_order_id == "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4"
    assert report.venue_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert (report.symbol, report.side, report.type, report.time_in_force) == (
        "AAPL",
        OrderSide.BUY,
        OrderType.MARKET,
        TimeInForce.DAY,
    )
    assert (report.status, report.filled_qty, report.avg_fill_price) == (
        OrderStatus.ACCEPTED,
        0,
        None,
    )
    assert report.ts_ns == UPDATED_NS
    assert parse_order(DOC_ORDER).submitted_ns == SUBMITTED_NS


def test_a_crypto_order_reports_under_our_symbol_with_exact_decimals() -> None:
    raw = crypto_order(
        filled_qty="0.2", filled_avg_price="60000.123456789", status="partially_filled"
    )
    report = order_report(parse_order(raw))

    assert report.symbol == "BTCUSDT"
    assert (report.qty, report.filled_qty) == (Decimal("0.5"), Decimal("0.2"))
    assert report.avg_fill_price == Decimal("60000.123456789")
    assert report.limit_price == Decimal(60000)
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert order_report(parse_order(raw), symbol="XBT").symbol == "XBT"


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("pending_new", "0", OrderStatus.SUBMITTED),
        ("accepted", "0", OrderStatus.ACCEPTED),
        ("new", "0", OrderStatus.ACCEPTED),
        ("new", "0.1", OrderStatus.PARTIALLY_FILLED),
        ("partially_filled", "0.1", OrderStatus.PARTIALLY_FILLED),
        ("filled", "0.5", OrderStatus.FILLED),
        ("pending_cancel", "0", OrderStatus.PENDING_CANCEL),
        ("canceled", "0.1", OrderStatus.CANCELED),
        ("replaced", "0", OrderStatus.CANCELED),
        ("expired", "0", OrderStatus.EXPIRED),
        ("done_for_day", "0.1", OrderStatus.EXPIRED),
        ("done_for_day", "0.5", OrderStatus.FILLED),
        ("calculated", "0.5", OrderStatus.FILLED),
        ("rejected", "0", OrderStatus.REJECTED),
        ("stopped", "0", OrderStatus.ACCEPTED),
    ],
)
def test_alpaca_statuses_map_onto_our_lifecycle(
    status: str, filled: str, expected: OrderStatus
) -> None:
    assert domain_status(status, Decimal(filled), Decimal("0.5")) is expected


def test_every_documented_alpaca_status_is_mapped() -> None:
    documented = {
        "new", "partially_filled", "filled", "done_for_day", "canceled", "expired",
        "replaced", "pending_cancel", "pending_replace", "accepted", "pending_new",
        "accepted_for_bidding", "stopped", "rejected", "suspended", "calculated",
    }  # fmt: skip
    assert documented <= ORDER_STATUS.keys()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("status", "teleported", "unknown Alpaca order status 'teleported'"),
        ("type", "iceberg", "unknown Alpaca order type 'iceberg'"),
        ("side", "sideways", "unknown Alpaca order side 'sideways'"),
        ("filled_qty", "lots", "filled_qty must be a number"),
        ("filled_avg_price", "NaN", "filled_avg_price must be finite"),
    ],
)
def test_unknown_or_malformed_values_raise_instead_of_being_guessed(
    field: str, value: str, message: str
) -> None:
    with pytest.raises(AlpacaWireError, match=message):
        order_report(parse_order(crypto_order(**{field: value})))


def test_a_payload_missing_required_fields_is_a_wire_error() -> None:
    broken = {k: v for k, v in DOC_ORDER.items() if k != "client_order_id"}
    with pytest.raises(AlpacaWireError, match="client_order_id"):
        parse_order(broken)
    with pytest.raises(AlpacaWireError, match="order list"):
        parse_orders({"not": "a list"})


# -- trade updates ---------------------------------------------------------------------------


def test_a_fill_update_carries_the_execution() -> None:
    message = {
        "stream": "trade_updates",
        "data": {
            "event": "fill",
            "execution_id": "5f1c8d2e-0000-4000-8000-000000000001",
            "order": crypto_order(status="filled", filled_qty="0.5", filled_avg_price="59990"),
            "timestamp": "2021-03-16T18:38:02.123456789Z",
            "price": "59990",
            "qty": "0.5",
            "position_qty": "0.5",
        },
    }
    update = parse_trade_update(message)

    assert update.is_fill
    assert (update.fill_qty, update.fill_price) == (Decimal("0.5"), Decimal(59990))
    assert update.ts_ns == 1_615_919_882_123_456_789
    assert update.order.domain_status is OrderStatus.FILLED


def test_an_update_without_timestamp_uses_the_orders_update_time() -> None:
    update = parse_trade_update(
        {"stream": "trade_updates", "data": {"event": "new", "order": crypto_order()}}
    )
    assert not update.is_fill
    assert update.ts_ns == UPDATED_NS


@pytest.mark.parametrize(
    "message",
    [
        {"stream": "listening", "data": {}},
        {"stream": "trade_updates", "data": {"event": "new"}},
        [],
    ],
)
def test_messages_that_are_not_trade_updates_are_refused(message: Any) -> None:
    with pytest.raises(AlpacaWireError):
        parse_trade_update(message)


# -- positions and account ----------------------------------------------------------------------


def test_positions_map_back_to_our_symbols_with_signed_quantities() -> None:
    raw = [
        {"symbol": "BTCUSD", "asset_class": "crypto", "qty": "0.5", "avg_entry_price": "60000",
         "side": "long"},
        {"symbol": "AAPL", "asset_class": "us_equity", "qty": "-10", "avg_entry_price": "190",
         "side": "short"},
        {"symbol": "TSLA", "asset_class": "us_equity", "qty": "3", "avg_entry_price": "200",
         "side": "short"},
    ]  # fmt: skip
    reports = {p.symbol: (p.qty, p.avg_price) for p in position_reports(raw)}

    assert reports == {
        "BTCUSDT": (Decimal("0.5"), Decimal(60000)),
        "AAPL": (Decimal(-10), Decimal(190)),
        "TSLA": (Decimal(-3), Decimal(200)),
    }


def test_alpaca_pairs_that_are_one_symbol_of_ours_merge_at_their_average() -> None:
    raw = [
        {"symbol": "BTCUSD", "asset_class": "crypto", "qty": "1", "avg_entry_price": "60000"},
        {"symbol": "BTCUSDT", "asset_class": "crypto", "qty": "3", "avg_entry_price": "64000"},
    ]
    (merged,) = position_reports(raw)
    assert (merged.symbol, merged.qty, merged.avg_price) == ("BTCUSDT", 4, Decimal(63000))


def test_account_fields_are_decimals() -> None:
    account = account_report(
        {"cash": "1000.5", "equity": "1200.25", "buying_power": "999.75", "currency": "USD",
         "account_number": "PA1"}
    )  # fmt: skip
    assert (account.cash, account.equity, account.buying_power, account.currency) == (
        Decimal("1000.5"),
        Decimal("1200.25"),
        Decimal("999.75"),
        "USD",
    )


# -- symbols ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"), [("BTCUSDT", "BTC/USD"), ("DOGEUSDT", "DOGE/USD"), ("AAPL", "AAPL")]
)
def test_symbols_round_trip(ours: str, theirs: str) -> None:
    assert to_alpaca_symbol(ours) == theirs
    assert from_alpaca_symbol(theirs) == ours


@pytest.mark.parametrize("unlisted", ["BNBUSDT", "XLMUSDT", "PEPEUSDT"])
def test_coins_alpaca_does_not_list_are_refused(unlisted: str) -> None:
    with pytest.raises(RejectedError, match=f"{unlisted} is not listed on Alpaca"):
        to_alpaca_symbol(unlisted)


@pytest.mark.parametrize("nonsense", ["ETHBTC", "btc-usd", "USDCUSDT"])
def test_symbols_that_cannot_trade_there_are_refused_with_the_reason(nonsense: str) -> None:
    with pytest.raises(RejectedError, match="cannot be traded on Alpaca"):
        to_alpaca_symbol(nonsense)


@pytest.mark.parametrize(
    ("theirs", "asset_class", "ours"),
    [
        ("BTCUSD", "crypto", "BTCUSDT"),
        ("SHIB/USD", None, "SHIBUSDT"),
        ("ETH/BTC", None, "ETHBTC"),
        ("ETHBTC", "crypto", "ETHBTC"),
        ("BRK.B", "us_equity", "BRK.B"),
    ],
)
def test_alpaca_symbols_outside_the_catalog_still_map(
    theirs: str, asset_class: str | None, ours: str
) -> None:
    assert from_alpaca_symbol(theirs, asset_class) == ours


# -- requests ------------------------------------------------------------------------------------


def test_a_crypto_day_order_is_sent_gtc_under_the_usd_pair() -> None:
    fields = build_order_request(
        domain_order(time_in_force=TimeInForce.DAY), "BTC/USD"
    ).to_request_fields()
    assert fields == {
        "symbol": "BTC/USD",
        "qty": 0.5,
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "client_order_id": "c-1",
        "limit_price": 60000.5,
    }


def test_a_stock_stop_order_keeps_day_and_its_stop_price() -> None:
    stock = domain_order(
        "AAPL", type=OrderType.STOP, limit_price=None, stop_price=Decimal("180.25"),
        time_in_force=TimeInForce.DAY, side=OrderSide.SELL,
    )  # fmt: skip
    fields = build_order_request(stock, "AAPL").to_request_fields()
    assert (fields["type"], fields["time_in_force"], fields["stop_price"], fields["side"]) == (
        "stop",
        "day",
        180.25,
        "sell",
    )


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (domain_order(time_in_force=TimeInForce.FOK), "gtc and ioc only"),
        (
            domain_order(type=OrderType.STOP, limit_price=None, stop_price=Decimal(1)),
            "stop_limit orders only",
        ),
        (domain_order(qty=Decimal("0.12345678901234567890")), "cannot be sent to Alpaca exactly"),
    ],
)
def test_orders_alpaca_crypto_cannot_take_are_refused(order: Order, message: str) -> None:
    with pytest.raises(RejectedError, match=message):
        build_order_request(order, "BTC/USD")


# -- HTTP errors ----------------------------------------------------------------------------------


def api_error(status: int, body: str, headers: dict[str, str] | None = None) -> APIError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return APIError(body, requests.HTTPError(response=response))


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason"),
    [
        (422, '{"code":40010001,"message":"client_order_id must be unique"}',
         DuplicateClientOrderId, "client_order_id must be unique"),
        (403, '{"code":40310000,"message":"insufficient buying power"}', RejectedError,
         "insufficient buying power"),
        (422, '{"code":40010001,"message":"qty must be > 0"}', RejectedError, "qty must be > 0"),
        (404, '{"code":40410000,"message":"order not found"}', NotFoundError, "order not found"),
        (401, '{"code":40110000,"message":"request is not authorized"}', RejectedError,
         "request is not authorized"),
    ],
)  # fmt: skip
def test_refusals_become_rejections_with_alpacas_message(
    status: int, body: str, kind: type[RejectedError], reason: str
) -> None:
    error = translate_api_error(api_error(status, body), "submit c-1")
    assert type(error) is kind
    assert isinstance(error, RejectedError) and error.reason == reason


def test_rate_limits_carry_retry_after_and_server_errors_are_ambiguous() -> None:
    limited = translate_api_error(
        api_error(429, '{"code":42910000,"message":"rate limit exceeded"}', {"Retry-After": "3"}),
        "submit c-1",
    )
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 3.0
    failed = translate_api_error(api_error(502, "<html>bad gateway</html>"), "submit c-1")
    assert isinstance(failed, AmbiguousOutcome)
    assert "bad gateway" in str(failed)
