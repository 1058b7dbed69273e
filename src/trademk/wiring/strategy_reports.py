"""What strategies did: per-strategy performance and the net exposure per symbol.

Both are computed from the strategies' stored fills (each strategy's own book,
rebuilt with :class:`StrategyBook`) and marked at the latest prices of the
account view, which also gives the account's own position for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademk.engine.strategy_book import BookPerformance, StrategyBook
from trademk.storage.strategy_models import StrategyRecord
from trademk.storage.strategy_repository import StrategyRepository
from trademk.wiring.strategy_hosts import StrategyAccount


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position of a strategy's book."""

    symbol: str
    qty: Decimal
    avg_price: Decimal
    last_price: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """A strategy's performance from its fills, marked at the latest prices."""

    record: StrategyRecord
    performance: BookPerformance
    orders: dict[str, int]
    positions: list[PositionView]


@dataclass(frozen=True, slots=True)
class StrategyHolding:
    """What one strategy holds in a symbol."""

    strategy_id: str
    name: str
    qty: Decimal
    exposure: Decimal


@dataclass(frozen=True, slots=True)
class SymbolExposure:
    """Net position and exposure of every strategy together in one symbol."""

    symbol: str
    net_qty: Decimal
    last_price: Decimal | None
    net_exposure: Decimal
    account_qty: Decimal
    strategies: list[StrategyHolding]


class StrategyReports:
    """Builds the reports from the strategy repository and an account view."""

    def __init__(self, repository: StrategyRepository, account: StrategyAccount) -> None:
        self.repository = repository
        self.account = account

    def _marks(self) -> dict[str, Decimal]:
        prices = self.account.prices
        marks = {}
        for symbol in prices.symbols():
            price = prices.last_price(symbol)
            if price is not None and price > 0:
                marks[symbol] = Decimal(repr(float(price)))
        return marks

    async def performance(self, record: StrategyRecord) -> PerformanceReport:
        """P&L, trades, win rate and drawdown of a strategy from its stored fills."""
        await self.account.settled()
        fills = await self.repository.strategy_fills(str(record.id))
        book = StrategyBook.from_fills(record.capital_allocation, fills)
        book.mark_all(self._marks())
        positions = [
            PositionView(
                symbol=p.symbol,
                qty=p.qty,
                avg_price=p.avg_price,
                last_price=p.last_price,
                market_value=p.market_value,
                unrealized_pnl=p.unrealized_pnl,
                realized_pnl=p.realized_pnl,
            )
            for p in sorted(book.portfolio.open_positions(), key=lambda p: (p.symbol, p.venue))
        ]
        orders = await self.repository.order_counts(str(record.id))
        return PerformanceReport(record, book.performance(), orders, positions)

    async def exposure(self) -> list[SymbolExposure]:
        """Per symbol: what every strategy holds, their net position, and the account's."""
        await self.account.settled()
        records = await self.repository.find()
        fills = await self.repository.fills_by_strategy([str(r.id) for r in records])
        marks = self._marks()
        holdings: dict[str, list[StrategyHolding]] = {}
        last_fill_price: dict[str, Decimal] = {}
        for record in records:
            book = StrategyBook.from_fills(record.capital_allocation, fills.get(str(record.id), []))
            for position in book.portfolio.open_positions():
                price = marks.get(position.symbol, position.last_price or Decimal(0))
                last_fill_price.setdefault(position.symbol, position.last_price or Decimal(0))
                holdings.setdefault(position.symbol, []).append(
                    StrategyHolding(str(record.id), record.name, position.qty, position.qty * price)
                )
        return [
            self._symbol_exposure(symbol, held, marks.get(symbol, last_fill_price.get(symbol)))
            for symbol, held in sorted(holdings.items())
        ]

    def _symbol_exposure(
        self, symbol: str, held: list[StrategyHolding], price: Decimal | None
    ) -> SymbolExposure:
        net = sum((h.qty for h in held), Decimal(0))
        return SymbolExposure(
            symbol=symbol,
            net_qty=net,
            last_price=price,
            net_exposure=net * price if price is not None else Decimal(0),
            account_qty=self.account.qty(symbol),
            strategies=held,
        )
