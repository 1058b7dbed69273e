"""Portfolio cash, equity, exposure and P&L, and the equity identity."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide
from trademk.domain.portfolio import Portfolio

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
_ids = count(1)


def fill(
    side: OrderSide,
    qty: str | Decimal,
    price: str | Decimal,
    fee: str | Decimal = "0",
    symbol: str = "AAPL",
    venue: str = "paper",
    client_order_id: str | None = None,
    trade_id: str | None = None,
) -> Fill:
    n = next(_ids)
    return Fill(
        client_order_id=client_order_id or f"c{n}",
        venue_order_id=f"v{n}",
        trade_id=trade_id or f"t{n}",
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(price),
        fee=D(fee),
        ts_ns=n,
        venue=venue,
    )


def identity_gap(portfolio: Portfolio) -> Decimal:
    """equity - (starting_cash + realized + unrealized - fees); zero when the books balance."""
    expected = (
        portfolio.starting_cash + portfolio.realized_pnl + portfolio.unrealized_pnl - portfolio.fees
    )
    return portfolio.equity - expected


def test_new_portfolio_holds_only_cash() -> None:
    portfolio = Portfolio(D("10000"))
    assert portfolio.cash == portfolio.equity == D(10000)
    assert portfolio.base_currency == "USD"
    assert portfolio.gross_exposure == portfolio.net_exposure == 0
    assert portfolio.total_pnl == 0
    assert list(portfolio.open_positions()) == []


def test_buy_mark_and_partial_sell_move_cash_equity_and_pnl() -> None:
    portfolio = Portfolio(D("10000"))
    assert portfolio.apply(fill(BUY, "10", "100", fee="1")) is True
    assert portfolio.cash == D("8999")  # 10000 - 10 * 100 - 1
    assert portfolio.equity == D("9999")  # marked at the fill price
    assert identity_gap(portfolio) == 0

    portfolio.mark("AAPL", D("105"))
    assert portfolio.equity == D("10049")  # 8999 + 10 * 105
    assert portfolio.unrealized_pnl == D(50)
    assert portfolio.total_pnl == D(49)
    assert identity_gap(portfolio) == 0

    portfolio.apply(fill(SELL, "4", "110", fee="0.5"))
    assert portfolio.cash == D("9438.5")  # 8999 + 4 * 110 - 0.5
    assert portfolio.realized_pnl == D(40)  # (110 - 100) * 4
    assert portfolio.unrealized_pnl == D(30)  # still marked at 105: (105 - 100) * 6
    assert portfolio.fees == D("1.5")
    assert portfolio.net_realized_pnl == D("38.5")
    assert portfolio.equity == D("10068.5")  # 9438.5 + 6 * 105
    assert portfolio.total_pnl == portfolio.equity - portfolio.starting_cash
    assert identity_gap(portfolio) == 0


def test_short_position_adds_cash_and_negative_exposure() -> None:
    portfolio = Portfolio(D("50000"))
    portfolio.apply(fill(SELL, "0.5", "40000", fee="2", symbol="BTCUSDT", venue="binance"))
    assert portfolio.cash == D("69998")  # 50000 + 20000 - 2
    portfolio.mark("BTCUSDT", D("38000"))
    assert portfolio.net_exposure == D(-19000)
    assert portfolio.gross_exposure == D(19000)
    assert portfolio.unrealized_pnl == D(1000)  # (40000 - 38000) * 0.5
    assert portfolio.equity == D("50998")  # 69998 - 19000
    assert identity_gap(portfolio) == 0


def test_exposure_per_symbol_gross_and_net() -> None:
    portfolio = Portfolio(D("100000"))
    portfolio.apply(fill(BUY, "10", "100", symbol="AAPL"))
    portfolio.apply(fill(BUY, "5", "100", symbol="AAPL", venue="alpaca"))
    portfolio.apply(fill(SELL, "2", "300", symbol="MSFT"))
    assert portfolio.exposure("AAPL") == D(1500)
    assert portfolio.exposure("MSFT") == D(-600)
    assert portfolio.exposure("TSLA") == 0
    assert portfolio.exposures() == {"AAPL": D(1500), "MSFT": D(-600)}
    assert portfolio.gross_exposure == D(2100)
    assert portfolio.net_exposure == D(900)
    assert portfolio.qty("AAPL") == D(15)
    assert set(portfolio.positions) == {("AAPL", "paper"), ("AAPL", "alpaca"), ("MSFT", "paper")}


def test_mark_values_every_venue_and_positions_opened_later() -> None:
    portfolio = Portfolio(D("10000"))
    portfolio.mark("AAPL", D("120"))
    portfolio.apply(fill(BUY, "1", "100", venue="paper"))
    portfolio.apply(fill(BUY, "1", "101", venue="alpaca"))
    # Both positions carry the earlier mark rather than their fill prices.
    assert portfolio.exposure("AAPL") == D(240)
    portfolio.mark("AAPL", D("110"))
    assert portfolio.exposure("AAPL") == D(220)
    assert portfolio.unrealized_pnl == D(19)  # (110 - 100) + (110 - 101)
    assert portfolio.last_price("AAPL") == D(110)
    assert identity_gap(portfolio) == 0


def test_duplicate_fill_is_booked_once() -> None:
    portfolio = Portfolio(D("10000"))
    first = fill(BUY, "3", "10", fee="0.1", client_order_id="c", trade_id="T")
    assert portfolio.apply(first) is True
    assert portfolio.apply(first) is False
    assert portfolio.cash == D("9969.9")
    assert portfolio.qty("AAPL") == D(3)


def test_same_trade_id_on_two_of_our_orders_is_two_fills() -> None:
    # Both sides of one venue trade can be ours (e.g. two strategies crossing at the paper venue).
    portfolio = Portfolio(D("10000"))
    assert portfolio.apply(fill(BUY, "1", "10", client_order_id="a", trade_id="T")) is True
    assert portfolio.apply(fill(SELL, "1", "10", client_order_id="b", trade_id="T")) is True
    assert portfolio.qty("AAPL") == 0
    assert portfolio.cash == D(10000)


def test_round_trip_with_flip_balances_exactly() -> None:
    portfolio = Portfolio(D("1000"))
    portfolio.apply(fill(BUY, "2", "100", fee="0.2"))
    portfolio.apply(fill(SELL, "5", "110", fee="0.55"))  # realize 20, short 3 @ 110
    portfolio.mark("AAPL", D("104"))
    assert portfolio.realized_pnl == D(20)
    assert portfolio.unrealized_pnl == D(18)  # (110 - 104) * 3
    assert portfolio.cash == D("1349.25")  # 1000 - 200.2 + 549.45
    assert portfolio.equity == D("1037.25")  # 1349.25 - 3 * 104
    assert identity_gap(portfolio) == 0


@pytest.mark.parametrize(("cash", "error"), [(D("-1"), ValueError), (1000.0, TypeError)])
def test_bad_starting_cash_is_refused(cash: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="starting_cash"):
        Portfolio(cash)  # type: ignore[arg-type]


def test_bad_mark_is_refused() -> None:
    portfolio = Portfolio(D(1))
    with pytest.raises(ValueError, match="mark price"):
        portfolio.mark("AAPL", D(0))
    assert portfolio.last_price("AAPL") is None


# -- property: the equity identity holds over random fills and marks ---------------

SYMBOLS = ("AAPL", "BTCUSDT")
quantities = st.integers(min_value=1, max_value=5000).map(lambda n: D(n) / 100)
prices = st.integers(min_value=1, max_value=200_000).map(lambda n: D(n) / 100)
fees = st.integers(min_value=0, max_value=500).map(lambda n: D(n) / 100)


@dataclass(frozen=True)
class Trade:
    symbol: str
    venue: str
    side: OrderSide
    qty: Decimal
    price: Decimal
    fee: Decimal


@dataclass(frozen=True)
class Mark:
    symbol: str
    price: Decimal


trades = st.builds(
    Trade,
    symbol=st.sampled_from(SYMBOLS),
    venue=st.sampled_from(("paper", "alpaca")),
    side=st.sampled_from((BUY, SELL)),
    qty=quantities,
    price=prices,
    fee=fees,
)
marks = st.builds(Mark, symbol=st.sampled_from(SYMBOLS), price=prices)
# Decimal keeps 28 significant digits; only partial closes divide, so the books
# may drift by far less than this over a few dozen fills of these sizes.
TOLERANCE = D("1e-15")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(trades, marks), max_size=40))
def test_equity_identity_holds_over_random_fills_and_marks(steps: list[Trade | Mark]) -> None:
    portfolio = Portfolio(D("100000"))
    exact_cash = Fraction(100000)
    for step in steps:
        if isinstance(step, Mark):
            portfolio.mark(step.symbol, step.price)
        else:
            portfolio.apply(
                fill(step.side, step.qty, step.price, step.fee, step.symbol, step.venue)
            )
            notional = Fraction(step.qty) * Fraction(step.price)
            exact_cash += (-notional if step.side is BUY else notional) - Fraction(step.fee)
        assert Fraction(portfolio.cash) == exact_cash
        assert abs(identity_gap(portfolio)) <= TOLERANCE
        assert portfolio.equity == portfolio.cash + portfolio.net_exposure
        assert portfolio.gross_exposure >= abs(portfolio.net_exposure)
