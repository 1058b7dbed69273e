"""Fee models, matching primitives, the buying-power rule and the DAY-expiry rule."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.unit.venues.paper.support import DAY_END
from trademk.domain.orders import Order, OrderSide, OrderType
from trademk.engine.clock import datetime_to_ns
from trademk.venues.paper import BpsFee, PerShareFee, next_utc_midnight
from trademk.venues.paper.buying_power import buying_power_rejection, opening_qty
from trademk.venues.paper.matching import (
    MarketLiquidity,
    Slippage,
    fill_qty,
    quote_crosses,
    stop_triggered,
    taker_match,
    to_price,
    to_size,
    trade_prints_through,
)

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
NO_SLIP = Slippage(D(0))


def utc_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return datetime_to_ns(datetime(year, month, day, hour, minute, tzinfo=UTC))


# -- fees ---------------------------------------------------------------------------


def test_bps_fee_is_a_fraction_of_notional() -> None:
    assert BpsFee(D("10")).fee(D("2"), D("150.25")) == D("0.3005")
    assert BpsFee(D(0)).fee(D(5), D(100)) == 0


def test_per_share_fee_applies_the_minimum_and_the_cap() -> None:
    fee = PerShareFee(D("0.005"), minimum=D("1"), max_bps=D("100"))
    assert fee.fee(D(1000), D(50)) == D("5.000")  # per share
    assert fee.fee(D(10), D(50)) == D("1")  # minimum
    assert fee.fee(D(10), D("0.5")) == D("0.05")  # capped at 1 % of 5 USD


@pytest.mark.parametrize(
    "build",
    [lambda: BpsFee(D(-1)), lambda: PerShareFee(D("-0.01")), lambda: PerShareFee(D(1), D(-1))],
)
def test_negative_fee_parameters_are_refused(build: object) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        build()  # type: ignore[operator]


def test_fee_parameters_must_be_decimal() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        BpsFee(1.5)  # type: ignore[arg-type]


# -- conversions and slippage ---------------------------------------------------------


def test_float_prices_become_their_shortest_decimal() -> None:
    assert to_price(100.1) == D("100.1")
    assert to_price(0.1 + 0.2) == D("0.30000000000000004")
    assert to_size(None) is None and to_size(0.0) is None and to_size(-1.0) is None
    assert to_size(2.5) == D("2.5")


def test_slippage_moves_the_price_against_the_taker() -> None:
    slippage = Slippage(D("5"))
    assert slippage.apply(BUY, D("100")) == D("100.05")
    assert slippage.apply(SELL, D("100")) == D("99.95")
    with pytest.raises(ValueError, match=r"\[0, 10000\)"):
        Slippage(D(10_000))


# -- taker matching -------------------------------------------------------------------------


def test_a_taker_buys_at_the_ask_and_sells_at_the_bid() -> None:
    liquidity = MarketLiquidity(D(99), D(3), D(101), D(2), D(100))
    buy = taker_match(BUY, None, liquidity, NO_SLIP)
    sell = taker_match(SELL, None, liquidity, NO_SLIP)
    assert buy is not None and (buy.price, buy.size, buy.from_quote) == (D(101), D(2), True)
    assert sell is not None and (sell.price, sell.size) == (D(99), D(3))


def test_without_a_quote_a_taker_trades_at_the_last_price_unlimited() -> None:
    match = taker_match(BUY, None, MarketLiquidity(last=D(100)), NO_SLIP)
    assert match is not None and (match.price, match.size, match.from_quote) == (
        D(100),
        None,
        False,
    )
    assert taker_match(BUY, None, MarketLiquidity(), NO_SLIP) is None


def test_a_marketable_limit_fills_at_the_better_of_limit_and_slipped_quote() -> None:
    liquidity = MarketLiquidity(D(99), None, D(100), None)
    slipped = Slippage(D(100))  # 1 %
    capped = taker_match(BUY, D("100.5"), liquidity, slipped)
    improved = taker_match(BUY, D(105), liquidity, slipped)
    assert capped is not None and capped.price == D("100.5")
    assert improved is not None and improved.price == D("101.00")
    assert taker_match(BUY, D("99.99"), liquidity, NO_SLIP) is None
    assert taker_match(SELL, D("99.01"), liquidity, NO_SLIP) is None


def test_a_side_taken_up_this_tick_offers_nothing_more() -> None:
    liquidity = MarketLiquidity(D(99), D(1), D(101), D(1))
    liquidity.take(BUY, D(1), from_quote=True)
    assert taker_match(BUY, None, liquidity, NO_SLIP) is None
    assert not quote_crosses(BUY, D(105), liquidity)
    assert taker_match(SELL, None, liquidity, NO_SLIP) is not None


# -- resting orders and stops ------------------------------------------------------------------


def test_a_quote_crosses_a_resting_limit_at_or_through_it() -> None:
    assert quote_crosses(BUY, D(100), MarketLiquidity(ask=D(100)))
    assert not quote_crosses(BUY, D(100), MarketLiquidity(ask=D("100.01")))
    assert quote_crosses(SELL, D(100), MarketLiquidity(bid=D(100)))
    assert not quote_crosses(SELL, D(100), MarketLiquidity(bid=D("99.99")))


def test_only_a_print_strictly_through_the_limit_fills_a_resting_order() -> None:
    assert trade_prints_through(BUY, D(100), D("99.99"))
    assert not trade_prints_through(BUY, D(100), D(100))
    assert trade_prints_through(SELL, D(100), D("100.01"))
    assert not trade_prints_through(SELL, D(100), D(100))


def test_stops_trigger_when_the_price_reaches_them() -> None:
    assert stop_triggered(BUY, D(100), D(100)) and not stop_triggered(BUY, D(100), D(99))
    assert stop_triggered(SELL, D(100), D(100)) and not stop_triggered(SELL, D(100), D(101))


def test_fill_quantity_is_capped_by_the_available_size() -> None:
    assert fill_qty(D(5), None) == D(5)
    assert fill_qty(D(5), D(2)) == D(2)
    assert fill_qty(D(5), D(9)) == D(5)
    assert fill_qty(D(5), D(-1)) == 0


# -- buying power -----------------------------------------------------------------------------


def test_opening_quantity_excludes_what_closes_the_position() -> None:
    assert opening_qty(SELL, D(10), D(4), D(0)) == D(6)
    assert opening_qty(SELL, D(3), D(4), D(0)) == 0
    assert opening_qty(SELL, D(3), D(4), D(2)) == D(1)  # another sell closes 2 first
    assert opening_qty(BUY, D(3), D(-5), D(0)) == 0
    assert opening_qty(BUY, D(8), D(-5), D(0)) == D(3)
    assert opening_qty(BUY, D(2), D(5), D(0)) == D(2)


def _order(side: OrderSide) -> Order:
    return Order(
        client_order_id="bp",
        symbol="AAPL",
        side=side,
        type=OrderType.MARKET,
        qty=D(10),
        venue="paper",
        created_ns=0,
    )


def _check(side: OrderSide, opening: Decimal, available: Decimal) -> tuple[str | None, Decimal]:
    return buying_power_rejection(
        _order(side),
        opening=opening,
        reference_price=D(100),
        fee=D(1),
        available=available,
        allow_short=True,
        currency="USD",
    )


def test_buying_power_rule_reserves_or_refuses() -> None:
    reason, reserved = _check(BUY, D(10), D(1001))
    assert (reason, reserved) == (None, D(1001))
    reason, reserved = _check(BUY, D(10), D(1000))
    assert (
        reason == "insufficient buying power: buy 10 AAPL needs 1001.00 USD, available 1000.00 USD"
    )
    assert reserved == 0
    reason, _ = _check(SELL, D(0), D(-5))
    assert reason is None  # closing is always allowed


def test_short_sales_are_refused_when_shorting_is_off() -> None:
    reason, _ = buying_power_rejection(
        _order(SELL),
        opening=D(4),
        reference_price=D(100),
        fee=D(0),
        available=D(10**6),
        allow_short=False,
        currency="USD",
    )
    assert reason is not None and reason.startswith("short selling is disabled")


# -- DAY expiry rule ----------------------------------------------------------------------------


def test_crypto_day_orders_end_at_the_next_utc_midnight() -> None:
    assert DAY_END("BTCUSDT", utc_ns(2024, 6, 3, 23, 59)) == utc_ns(2024, 6, 4)
    assert DAY_END("BTC/USD", utc_ns(2024, 6, 4)) == utc_ns(2024, 6, 5)
    assert next_utc_midnight(utc_ns(2024, 6, 3, 0, 0)) == utc_ns(2024, 6, 4)


def test_stock_day_orders_end_at_the_nyse_close() -> None:
    # 16:00 New York = 20:00 UTC in June.
    assert DAY_END("AAPL", utc_ns(2024, 6, 3, 14)) == utc_ns(2024, 6, 3, 20)
    # Placed on Saturday: the order lives until Monday's close.
    assert DAY_END("AAPL", utc_ns(2024, 6, 8, 12)) == utc_ns(2024, 6, 10, 20)
    # Day after Thanksgiving: early close at 13:00 New York = 18:00 UTC.
    assert DAY_END("AAPL", utc_ns(2024, 11, 29, 15)) == utc_ns(2024, 11, 29, 18)
