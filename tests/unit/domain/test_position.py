"""Position arithmetic with numbers worked out by hand."""

from __future__ import annotations

from decimal import Decimal
from itertools import count

import pytest

from trademk.domain.errors import InvariantViolation
from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide
from trademk.domain.position import Position

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
_trade_ids = count(1)


def fill(
    side: OrderSide,
    qty: str,
    price: str,
    fee: str = "0",
    symbol: str = "AAPL",
    venue: str = "paper",
) -> Fill:
    n = next(_trade_ids)
    return Fill(
        client_order_id=f"c{n}",
        venue_order_id=f"v{n}",
        trade_id=f"t{n}",
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(price),
        fee=D(fee),
        ts_ns=n,
        venue=venue,
    )


def state(position: Position) -> tuple[Decimal, Decimal, Decimal]:
    return position.qty, position.avg_price, position.realized_pnl


def test_new_position_is_flat_and_unmarked() -> None:
    position = Position("AAPL", "paper")
    assert state(position) == (D(0), D(0), D(0))
    assert position.is_flat and position.last_price is None
    assert position.market_value == 0 and position.unrealized_pnl == 0


def test_long_open_add_partial_close_and_close() -> None:
    position = Position("AAPL", "paper")
    assert position.apply(fill(BUY, "10", "100")) == 0
    assert state(position) == (D(10), D(100), D(0))
    assert position.is_long

    # Add 5 @ 106: cost 1000 + 530 = 1530 over 15 -> avg 102.
    position.apply(fill(BUY, "5", "106"))
    assert state(position) == (D(15), D(102), D(0))
    assert position.cost_basis == D(1530)

    # Sell 6 @ 110 realizes (110 - 102) * 6 = 48; the average does not move.
    assert position.apply(fill(SELL, "6", "110")) == D(48)
    assert state(position) == (D(9), D(102), D(48))
    assert position.cost_basis == D(918)

    # Sell the last 9 @ 95: (95 - 102) * 9 = -63, total -15; flat resets the average.
    assert position.apply(fill(SELL, "9", "95")) == D(-63)
    assert state(position) == (D(0), D(0), D(-15))
    assert position.is_flat and position.cost_basis == 0 and position.unrealized_pnl == 0


def test_short_open_add_partial_cover_and_cover() -> None:
    position = Position("AAPL", "paper")
    position.apply(fill(SELL, "4", "50"))
    assert state(position) == (D(-4), D(50), D(0))
    assert position.is_short

    # Add 6 @ 45: cost 200 + 270 = 470 over 10 -> avg 47.
    position.apply(fill(SELL, "6", "45"))
    assert state(position) == (D(-10), D(47), D(0))
    assert position.cost_basis == D(-470)

    # Buy 3 @ 40 realizes (47 - 40) * 3 = 21.
    assert position.apply(fill(BUY, "3", "40")) == D(21)
    assert state(position) == (D(-7), D(47), D(21))

    # Buy 7 @ 49 realizes (47 - 49) * 7 = -14; total 7, flat.
    assert position.apply(fill(BUY, "7", "49")) == D(-14)
    assert state(position) == (D(0), D(0), D(7))


def test_flip_long_to_short_realizes_old_side_and_opens_rest_at_fill_price() -> None:
    position = Position("AAPL", "paper")
    position.apply(fill(BUY, "2", "100"))
    # Sell 5 @ 110: close 2 for (110 - 100) * 2 = 20, then short 3 @ 110.
    assert position.apply(fill(SELL, "5", "110")) == D(20)
    assert state(position) == (D(-3), D(110), D(20))
    assert position.cost_basis == D(-330)
    position.mark(D(105))
    # Short 3 from 110 marked at 105: (110 - 105) * 3 = 15.
    assert position.unrealized_pnl == D(15)
    assert position.market_value == D(-315)


def test_flip_short_to_long_realizes_old_side_and_opens_rest_at_fill_price() -> None:
    position = Position("ETHUSDT", "binance")
    position.apply(fill(SELL, "3", "20", symbol="ETHUSDT", venue="binance"))
    # Buy 8 @ 18: cover 3 for (20 - 18) * 3 = 6, then long 5 @ 18.
    assert position.apply(fill(BUY, "8", "18", symbol="ETHUSDT", venue="binance")) == D(6)
    assert state(position) == (D(5), D(18), D(6))
    position.mark(D("18.5"))
    assert position.unrealized_pnl == D("2.5")


def test_fractional_crypto_quantities_are_exact() -> None:
    position = Position("AAPL", "paper")
    position.apply(fill(BUY, "0.015", "43000.10"))
    position.apply(fill(BUY, "0.005", "42000.50"))
    # cost 645.0015 + 210.0025 = 855.004 over 0.02 -> 42750.2
    assert position.avg_price == D("42750.2")
    assert position.apply(fill(SELL, "0.012", "44000")) == D("14.9976")  # (44000 - 42750.2) * 0.012
    assert position.qty == D("0.008")


def test_full_close_of_a_non_terminating_average_realizes_exactly() -> None:
    position = Position("AAPL", "paper")
    position.apply(fill(BUY, "1", "1"))
    position.apply(fill(BUY, "2", "2"))
    assert position.avg_price == D(5) / D(3)  # not rounded to any tick
    # Paid 5, receive 6: exactly 1, with no 0.9999... from the rounded average.
    assert position.apply(fill(SELL, "3", "2")) == D(1)
    assert position.realized_pnl == D(1)


def test_fees_are_kept_apart_from_realized_pnl() -> None:
    position = Position("AAPL", "paper")
    position.apply(fill(BUY, "10", "100", fee="1.25"))
    position.apply(fill(SELL, "10", "101", fee="1.30"))
    assert position.realized_pnl == D(10)
    assert position.fees_paid == D("2.55")
    assert position.net_realized_pnl == D("7.45")


def test_marks_value_long_and_short_positions() -> None:
    long = Position("AAPL", "paper")
    long.apply(fill(BUY, "4", "25"))
    assert long.last_price == D(25)  # first fill marks an unmarked position
    long.mark(D(30))
    assert long.market_value == D(120) and long.notional == D(120)
    assert long.unrealized_pnl == D(20) and long.total_pnl == D(20)
    long.apply(fill(BUY, "1", "28"))
    assert long.last_price == D(30)  # a fill does not overwrite a mark

    short = Position("AAPL", "paper")
    short.apply(fill(SELL, "4", "25"))
    short.mark(D(30))
    assert short.market_value == D(-120) and short.notional == D(120)
    assert short.unrealized_pnl == D(-20)
    assert short.cost_basis == D(-100)


def test_fill_for_another_symbol_or_venue_is_refused() -> None:
    position = Position("AAPL", "paper")
    position.apply(fill(BUY, "1", "10"))
    with pytest.raises(InvariantViolation, match="MSFT"):
        position.apply(fill(BUY, "1", "10", symbol="MSFT"))
    with pytest.raises(InvariantViolation, match="alpaca"):
        position.apply(fill(BUY, "1", "10", venue="alpaca"))
    assert state(position) == (D(1), D(10), D(0))


@pytest.mark.parametrize(("price", "error"), [(D(0), ValueError), (1.5, TypeError)])
def test_bad_mark_is_refused(price: object, error: type[Exception]) -> None:
    position = Position("AAPL", "paper")
    with pytest.raises(error, match="mark price"):
        position.mark(price)  # type: ignore[arg-type]
    assert position.last_price is None
