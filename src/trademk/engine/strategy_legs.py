"""One strategy on one symbol inside the live runner: its bar history, instance and sizing.

A :class:`StrategyLeg` is driven exactly as the event-driven backtest drives a
strategy: each closed bar is appended to a bounded rolling history, the
strategy is prepared over that history (``prepare``), and once the warm-up is
over the newest bar becomes the current one (``set_current_bar``) and
``on_bar`` runs. The intents it queued go through a :class:`LegRouter` — the
backtest's ``IntentRouter``, sizing against the strategy's own book instead of
the whole account.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Final

from trademk.backtest.event_broker import IntentRouter
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Bar
from trademk.domain.portfolio import Portfolio
from trademk.strategies.bars import Bars
from trademk.strategies.base import OrderIntent, Strategy
from trademk.strategies.params import ParamValue

__all__ = ["LegRouter", "StrategyLeg", "history_length", "lot_size", "strategy_order_id"]

MAX_CLIENT_ORDER_ID: Final = 64
CRYPTO_LOT: Final = 0.0001
STOCK_LOT: Final = 1.0


def history_length(params: Mapping[str, ParamValue], minimum: int, maximum: int) -> int:
    """How many bars a leg keeps: ``minimum``, or three times the largest integer
    parameter (window lengths) plus a margin when that is more, at most ``maximum``."""
    windows = [v for v in params.values() if isinstance(v, int) and not isinstance(v, bool)]
    wanted = 3 * max(windows, default=0) + 10
    return max(minimum, min(wanted, maximum))


def lot_size(asset_class: AssetClass) -> float:
    """The quantity step of entries: whole shares for stocks, 0.0001 units for crypto."""
    return STOCK_LOT if asset_class is AssetClass.STOCK else CRYPTO_LOT


def strategy_order_id(strategy_id: str, symbol: str, bar_ts: int, n: int) -> str:
    """The client_order_id of the ``n``-th order a strategy sent on the bar opened at ``bar_ts``.

    Deterministic, so a restart or a replay that decides again on the same bar
    sends the same id, which the OMS answers with the order it already has.
    """
    compact = strategy_id.replace("-", "")[:16]
    stamp = bar_ts // NANOS_PER_SECOND if bar_ts % NANOS_PER_SECOND == 0 else bar_ts
    candidate = f"{compact}-{symbol}-{stamp}-{n}"
    if len(candidate) <= MAX_CLIENT_ORDER_ID:
        return candidate
    digest = hashlib.sha256(candidate.encode()).hexdigest()[:24]
    return f"{compact}-{digest}-{n}"


class LegRouter(IntentRouter):
    """``IntentRouter`` over the strategy's book; with several symbols each leg's buying
    power is capped at an equal share of the strategy's equity, less what it holds."""

    def __init__(
        self,
        book: Portfolio,
        symbol: str,
        *,
        legs: int,
        commission: float,
        slippage: float,
        lot: float,
        strategy_id: str,
    ) -> None:
        super().__init__(
            book,
            symbol,
            cash=float(book.cash),
            commission=commission,
            slippage=slippage,
            lot_size=lot,
            strategy_id=strategy_id,
        )
        self._book = book
        self._legs = max(legs, 1)
        self.lot = Decimal(repr(float(lot))).normalize()

    def buying_power(self) -> float:
        whole = super().buying_power()
        if self._legs == 1:
            return whole
        share = float(self._book.equity) / self._legs - abs(float(self._book.exposure(self.symbol)))
        return min(whole, share)

    def whole_lots(self, qty: Decimal) -> Decimal:
        """``qty`` rounded down to a whole number of lots (sizing in floats leaves dust
        like 8.333300000000001; a broker wants 8.3333)."""
        return (qty / self.lot).to_integral_value(rounding=ROUND_DOWN) * self.lot

    def sync(self) -> None:
        """Refresh the float view the strategy reads (position, cash) from the book."""
        self._position = float(self._book.qty(self.symbol))
        self._cash = float(self._book.cash)


class StrategyLeg:
    """A strategy instance on one symbol with its rolling bar history."""

    def __init__(
        self, strategy: Strategy, router: LegRouter, symbol: str, interval: str, capacity: int
    ) -> None:
        if capacity < 2:
            raise ValueError("a leg keeps at least two bars")
        self.strategy = strategy
        self.router = router
        self.symbol = symbol
        self.interval = interval
        self.history: deque[Bar] = deque(maxlen=capacity)
        self.bars_seen = 0
        strategy.bind(router)

    @property
    def last_ts(self) -> int | None:
        """Open time of the newest bar held."""
        return self.history[-1].ts if self.history else None

    def preload(self, bars: Iterable[Bar]) -> int:
        """Add stored bars (oldest first) before live ones arrive; returns how many were kept."""
        kept = 0
        for bar in bars:
            if self._accepts(bar):
                self.history.append(bar)
                kept += 1
        if self.history:
            self.strategy.prepare(self.frame())
        return kept

    def _accepts(self, bar: Bar) -> bool:
        last = self.last_ts
        return bar.symbol == self.symbol and (last is None or bar.ts > last)

    def frame(self) -> Bars:
        """The history as ``Bars`` (oldest first)."""
        history = self.history
        return Bars.from_arrays(
            [b.ts for b in history],
            [b.open for b in history],
            [b.high for b in history],
            [b.low for b in history],
            [b.close for b in history],
            [b.volume for b in history],
            symbol=self.symbol,
            interval=self.interval,
        )

    def decide(self, bar: Bar) -> list[OrderIntent]:
        """Append the closed ``bar`` and run the strategy on it; the intents it queued.

        A bar not newer than the history (seen already, e.g. also preloaded) is ignored.
        """
        if not self._accepts(bar):
            return []
        self.history.append(bar)
        self.bars_seen += 1
        frame = self.frame()
        strategy = self.strategy
        strategy.prepare(frame)
        newest = len(frame) - 1
        self.router.set_last_price(bar.close)
        if newest >= strategy.first_decision_bar:
            strategy.set_current_bar(newest)
            strategy.on_bar(bar)
        return self.router.take_pending()
