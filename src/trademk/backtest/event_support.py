"""Pieces the event-driven backtest plugs into the live chain: an in-memory journal,
permissive default risk limits, bar timing and the intrabar price path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

from trademk.backtest.result import OpenPosition
from trademk.backtest.trades import TradeLedger
from trademk.domain.fills import Fill
from trademk.domain.orders import Order
from trademk.domain.position import Position
from trademk.domain.risk import RiskLimits
from trademk.strategies.bars import Bars

__all__ = [
    "BACKTEST_RISK_LIMITS",
    "EventRun",
    "InMemoryJournal",
    "bar_close_times",
    "bar_path",
]

_HUGE: Final = Decimal("1e18")

BACKTEST_RISK_LIMITS: Final = RiskLimits(
    max_order_qty_crypto=_HUGE,
    max_order_qty_stock=_HUGE,
    max_order_notional_usd=_HUGE,
    max_position_size_usd=_HUGE,
    max_open_orders=1_000_000,
    max_open_orders_per_symbol=None,
    max_daily_loss_usd=_HUGE,
    max_orders_per_second=1_000_000,
    max_orders_per_minute=1_000_000,
    max_price_deviation_pct=Decimal("1e9"),
    enforce_market_hours=False,
)
"""Limits that let every order of a backtest through: the run measures the
strategy, not the live account's limits. Pass real ``RiskLimits`` to
``run_event`` to see what they would have denied."""


@dataclass(frozen=True, slots=True, eq=False)
class EventRun:
    """Raw output of an event-driven run."""

    equity: npt.NDArray[np.float64]
    ledger: TradeLedger
    open_position: OpenPosition | None
    counters: dict[str, int]
    dropped_entries: int


class InMemoryJournal:
    """A ``TradingJournal`` kept in memory: a backtest persists nothing."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._fills: list[Fill] = []
        self._positions: dict[tuple[str, str], Position] = {}

    async def save(
        self,
        orders: Iterable[Order] = (),
        fills: Iterable[Fill] = (),
        positions: Iterable[Position] = (),
    ) -> None:
        """Keep the latest state of each order and position, and every fill."""
        for order in orders:
            self._orders[order.client_order_id] = order
        self._fills.extend(fills)
        for position in positions:
            self._positions[(position.symbol, position.venue)] = position

    async def order(self, client_order_id: str) -> Order | None:
        """The order saved under ``client_order_id``, if any."""
        return self._orders.get(client_order_id)

    async def open_orders(self) -> list[Order]:
        """Saved orders still open."""
        return [order for order in self._orders.values() if order.is_open]

    async def fills(self, venue: str | None = None) -> list[Fill]:
        """Saved fills, optionally of one venue."""
        return [f for f in self._fills if venue is None or f.venue == venue]

    async def client_order_ids(self) -> set[str]:
        """Ids of every saved order."""
        return set(self._orders)

    async def claim(self, order: Order) -> bool:
        """Store ``order`` unless its id is known (one backtest process: always the first)."""
        if order.client_order_id in self._orders:
            return False
        self._orders[order.client_order_id] = order
        return True


def bar_close_times(ts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """When each bar closes: 1 ns before the next bar opens (the last bar lasts the
    median bar spacing, or one second with a single bar)."""
    closes = np.empty_like(ts)
    if len(ts) > 1:
        closes[:-1] = ts[1:] - 1
        step = int(np.median(np.diff(ts[-101:])))
    else:
        step = 1_000_000_000
    if len(ts):
        closes[-1] = ts[-1] + max(step, 2) - 1
    return closes


def bar_path(bars: Bars, i: int, close_ns: int) -> Iterator[tuple[float, int]]:
    """Bar ``i`` as trade prints: open, then low and high (high first on a down bar),
    then close, spread over the bar's time."""
    start = int(bars.ts[i])
    span = max(int(close_ns) - start, 3)
    open_, high, low, close = bars.open[i], bars.high[i], bars.low[i], bars.close[i]
    extremes = (high, low) if close < open_ else (low, high)
    yield float(open_), start
    yield float(extremes[0]), start + span // 3
    yield float(extremes[1]), start + 2 * span // 3
    yield float(close), start + span
