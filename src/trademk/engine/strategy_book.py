"""One strategy's own book: positions, cash and P&L computed from its fills alone.

Several strategies share one account; each keeps a :class:`StrategyBook`
whose portfolio starts with the strategy's capital allocation and books only
the fills tagged with its id. The runner sizes the strategy's entries against
it, and the API reports it as the strategy's performance.

A *trade* is a round trip: it opens when a position leaves flat and closes
when it is back to flat, or when a fill flips it to the other side (the flip
opens the next trade). Its P&L is the realized P&L of its closing fills minus
every fee it paid (a flipping fill's fee is split between the two trades by
quantity). A trade wins when that P&L is positive. The drawdown is measured on
the book's equity sampled after every fill (positions valued at the fill
price) and at every :meth:`StrategyBook.mark_all`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from trademk.domain.fills import Fill
from trademk.domain.portfolio import Portfolio

__all__ = ["BookPerformance", "ClosedTrade", "StrategyBook"]

_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One round trip of one symbol."""

    symbol: str
    side: str
    qty: Decimal
    entry_ns: int
    exit_ns: int
    pnl: Decimal

    @property
    def won(self) -> bool:
        return self.pnl > 0


@dataclass(slots=True)
class _OpenTrade:
    side: str
    entry_ns: int
    qty: Decimal
    pnl: Decimal


@dataclass(frozen=True, slots=True)
class BookPerformance:
    """A strategy's numbers at one moment (money in the book's currency)."""

    capital: Decimal
    cash: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    total_pnl: Decimal
    return_pct: Decimal
    trades: int
    winning_trades: int
    losing_trades: int
    win_rate: Decimal | None
    max_drawdown: Decimal
    max_drawdown_amount: Decimal
    fills: int
    positions: dict[str, Decimal]


class StrategyBook:
    """Cash, positions, trades and drawdown of one strategy; see the module docstring."""

    def __init__(self, capital: Decimal, base_currency: str = "USD") -> None:
        if not capital > 0:
            raise ValueError(f"a strategy's capital must be positive, got {capital}")
        self.capital = capital
        self.portfolio = Portfolio(capital, base_currency)
        self.closed: list[ClosedTrade] = []
        self._open: dict[str, _OpenTrade] = {}
        self.fills = 0
        self._peak = capital
        self.max_drawdown = _ZERO
        self.max_drawdown_amount = _ZERO

    @classmethod
    def from_fills(cls, capital: Decimal, fills: Iterable[Fill]) -> StrategyBook:
        """A book with ``fills`` applied in time order."""
        book = cls(capital)
        for fill in sorted(fills, key=lambda f: f.ts_ns):
            book.apply(fill)
        return book

    def qty(self, symbol: str) -> Decimal:
        """Signed quantity held in ``symbol``."""
        return self.portfolio.qty(symbol)

    def apply(self, fill: Fill) -> bool:
        """Book ``fill``; False when it was already booked."""
        before = self.portfolio.qty(fill.symbol)
        realized_before = self._realized(fill.symbol)
        if not self.portfolio.apply(fill):
            return False
        self.fills += 1
        realized = self._realized(fill.symbol) - realized_before
        self._track_trade(fill, before, realized)
        self.portfolio.mark(fill.symbol, fill.price)
        self._sample()
        return True

    def mark(self, symbol: str, price: Decimal) -> None:
        """Value ``symbol`` at ``price`` (no drawdown sample; see ``mark_all``)."""
        self.portfolio.mark(symbol, price)

    def mark_all(self, prices: Mapping[str, Decimal]) -> None:
        """Value the open positions at ``prices`` and sample the equity for the drawdown."""
        for position in list(self.portfolio.open_positions()):
            price = prices.get(position.symbol)
            if price is not None and price > 0:
                self.portfolio.mark(position.symbol, price)
        self._sample()

    def _realized(self, symbol: str) -> Decimal:
        return sum(
            (p.realized_pnl for p in self.portfolio.positions.values() if p.symbol == symbol),
            _ZERO,
        )

    def _track_trade(self, fill: Fill, before: Decimal, realized: Decimal) -> None:
        symbol, signed = fill.symbol, fill.signed_qty
        after = before + signed
        trade = self._open.get(symbol)
        if trade is None or before == 0:
            self._open[symbol] = _OpenTrade(_side(signed), fill.ts_ns, abs(signed), -fill.fee)
            return
        if (before > 0) == (signed > 0):
            trade.pnl -= fill.fee
            trade.qty = max(trade.qty, abs(after))
            return
        closing = min(fill.qty, abs(before))
        closing_fee = fill.fee * closing / fill.qty
        trade.pnl += realized - closing_fee
        if after != 0 and (after > 0) == (before > 0):
            return
        self.closed.append(
            ClosedTrade(symbol, trade.side, trade.qty, trade.entry_ns, fill.ts_ns, trade.pnl)
        )
        del self._open[symbol]
        if after != 0:
            self._open[symbol] = _OpenTrade(
                _side(after), fill.ts_ns, abs(after), -(fill.fee - closing_fee)
            )

    def _sample(self) -> None:
        equity = self.portfolio.equity
        if equity > self._peak:
            self._peak = equity
        drop = self._peak - equity
        if drop > self.max_drawdown_amount:
            self.max_drawdown_amount = drop
        if self._peak > 0 and drop / self._peak > self.max_drawdown:
            self.max_drawdown = drop / self._peak

    def performance(self) -> BookPerformance:
        """The book's numbers at its current marks."""
        book = self.portfolio
        wins = sum(1 for trade in self.closed if trade.won)
        losses = sum(1 for trade in self.closed if trade.pnl < 0)
        count = len(self.closed)
        return BookPerformance(
            capital=self.capital,
            cash=book.cash,
            equity=book.equity,
            realized_pnl=book.realized_pnl,
            unrealized_pnl=book.unrealized_pnl,
            fees=book.fees,
            total_pnl=book.total_pnl,
            return_pct=book.total_pnl / self.capital * 100,
            trades=count,
            winning_trades=wins,
            losing_trades=losses,
            win_rate=Decimal(wins) / Decimal(count) if count else None,
            max_drawdown=self.max_drawdown,
            max_drawdown_amount=self.max_drawdown_amount,
            fills=self.fills,
            positions={p.symbol: book.qty(p.symbol) for p in book.open_positions()},
        )


def _side(signed: Decimal) -> str:
    return "long" if signed > 0 else "short"
