"""Pieces the event-driven backtest plugs into the live chain: an in-memory journal,
permissive default risk limits, bar timing and the intrabar price path."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
    "BustGuard",
    "EventRun",
    "InMemoryJournal",
    "bar_close_times",
    "bar_path",
    "cyclic_gc_paused",
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

    async def take_over(self, client_order_id: str, now_ns: int, stale_ns: int) -> bool:
        """Nobody else claims in a backtest: there is never an order to take over."""
        return False


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


class BustGuard:
    """Finds the first bar whose close takes equity (``cash + position * close``) to 0
    or below, between two decision bars, without scanning every gap.

    Decision bar ``k`` starts segment ``k`` (the bars after it, up to and including
    the next decision bar); the lowest and highest close of each segment are taken
    once, vectorised. A query inside a segment is answered from them when the
    extreme close cannot bust the account (the usual case), and by scanning the
    closes only when it might.
    """

    __slots__ = ("_close", "_highest", "_lowest")

    def __init__(self, close: npt.NDArray[np.float64], decisions: npt.NDArray[np.int64]) -> None:
        self._close = close
        starts = np.minimum(decisions + 1, len(close) - 1) if len(close) else decisions
        if len(starts):
            self._lowest = np.minimum.reduceat(close, starts).tolist()
            self._highest = np.maximum.reduceat(close, starts).tolist()
        else:
            self._lowest = self._highest = []

    def first_bust(
        self, segment: int, start: int, stop: int, cash: float, position: float
    ) -> int | None:
        """The first bar in ``[start, stop)`` (inside ``segment``) whose close leaves
        ``cash + position * close <= 0``, or None."""
        if 0 <= segment < len(self._lowest):
            worst = self._lowest[segment] if position > 0 else self._highest[segment]
            if cash + position * worst > 0:
                return None
        busted = np.flatnonzero(cash + position * self._close[start:stop] <= 0)
        return start + int(busted[0]) if len(busted) else None


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while the bar loop runs.

    The chain allocates several short-lived objects per order and keeps every
    order and fill of the run; the collector would walk the growing heap over and
    over for reference cycles the loop does not create (reference counting frees
    what it drops). The collector is process-wide, so overlapping runs (threads)
    share one pause: the first to enter turns it off, the last to leave turns it
    back on if it was on.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()
