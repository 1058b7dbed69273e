"""A strategy's own book: P&L from its fills, round-trip trades, win rate, drawdown."""

from __future__ import annotations

from decimal import Decimal

from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide
from trademk.engine.strategy_book import StrategyBook

T0 = 1_767_225_600_000_000_000
_ids = iter(range(1, 10_000))


def fill(side: str, qty: str, price: str, fee: str = "0", symbol: str = "BTCUSDT") -> Fill:
    n = next(_ids)
    return Fill(
        client_order_id=f"s1-{n}",
        venue_order_id=f"v{n}",
        trade_id=f"t{n}",
        symbol=symbol,
        side=OrderSide(side),
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(fee),
        ts_ns=T0 + n,
        venue="paper",
        strategy_id="s1",
    )


def test_round_trips_count_as_trades_with_their_fees_and_the_win_rate() -> None:
    book = StrategyBook(Decimal("1000"))
    book.apply(fill("buy", "2", "100", fee="1"))
    book.apply(fill("sell", "2", "110", fee="1"))  # +20 - 2 fees = +18
    book.apply(fill("sell", "1", "110"))
    book.apply(fill("buy", "1", "115"))  # short loses 5
    result = book.performance()
    assert [(t.side, t.qty, t.pnl) for t in book.closed] == [
        ("long", Decimal(2), Decimal(18)),
        ("short", Decimal(1), Decimal(-5)),
    ]
    assert (result.trades, result.winning_trades, result.losing_trades) == (2, 1, 1)
    assert result.win_rate == Decimal("0.5")
    assert result.realized_pnl == Decimal(15)
    assert result.fees == Decimal(2)
    assert result.equity == Decimal(1013)
    assert result.total_pnl == result.equity - result.capital
    assert result.return_pct == Decimal("1.3")


def test_a_flip_closes_one_trade_and_opens_the_next_splitting_the_fee() -> None:
    book = StrategyBook(Decimal("1000"))
    book.apply(fill("buy", "1", "100"))
    book.apply(fill("sell", "3", "120", fee="3"))  # closes 1 (+20 - 1), opens short 2 (fee 2)
    assert [(t.side, t.pnl) for t in book.closed] == [("long", Decimal(19))]
    book.apply(fill("buy", "2", "110"))  # short 2 from 120 to 110: +20 - 2
    assert [(t.side, t.qty, t.pnl) for t in book.closed][-1] == ("short", Decimal(2), Decimal(18))
    assert book.performance().positions == {}


def test_the_drawdown_is_the_largest_fall_from_a_peak() -> None:
    book = StrategyBook(Decimal("1000"))
    book.apply(fill("buy", "10", "100"))
    book.mark_all({"BTCUSDT": Decimal("110")})  # equity 1100: the peak
    book.mark_all({"BTCUSDT": Decimal("88")})  # 880: 220 below the peak
    book.mark_all({"BTCUSDT": Decimal("105")})
    result = book.performance()
    assert result.max_drawdown_amount == Decimal(220)
    assert result.max_drawdown == Decimal("0.2")
    assert result.unrealized_pnl == Decimal(50)
    assert result.positions == {"BTCUSDT": Decimal(10)}
    assert result.win_rate is None


def test_a_fill_booked_twice_counts_once() -> None:
    book = StrategyBook(Decimal("500"))
    once = fill("buy", "1", "100")
    assert book.apply(once)
    assert not book.apply(once)
    assert book.performance().fills == 1
    assert book.qty("BTCUSDT") == Decimal(1)
