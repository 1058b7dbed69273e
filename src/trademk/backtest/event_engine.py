"""The event-driven backtest: the live chain under a simulated clock.

The strategy (through ``IntentRouter``) → ``RiskEngine`` → ``OrderManager`` →
``PaperVenue`` chain runs exactly as it does live, with a ``SimClock`` and a
``LatestPriceCache`` fed from the bars instead of a feed. For each bar ``i``:

1. intents queued on bar ``i - 1`` execute at bar ``i``'s open (fill model
   ``next_open``): the clock moves to the bar's open time, the open is
   published as a trade print, and each intent is sized at that price and sent
   to the OMS (risk check, venue match, fill, portfolio) one after the other;
2. while orders rest at the venue (limit/stop), the bar is replayed as trade
   prints open → low → high → close (open → high → low → close for a down
   bar) so the venue matches them;
3. at the bar's close (just before the next bar opens) the strategy's
   ``on_bar`` runs; with fill model ``close`` its intents execute right away
   at the close.

A strategy that only acts on its signals (``uses_default_on_bar``) is not
called on bars where no signal column is set, where ``on_bar`` would do
nothing. Equity is cash plus the position at each close, taken from the OMS
portfolio after each bar that traded. If it falls to 0 or below, the position
is closed at that close and the run stops (equity 0 from there on). Fills
become trades through the FIFO ``TradeLedger``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from decimal import Decimal
from typing import Any, Final, TypeVar

import numpy as np
import pandas as pd

from trademk.backtest.api import RunSettings
from trademk.backtest.event_broker import IntentRouter
from trademk.backtest.event_support import (
    BACKTEST_RISK_LIMITS,
    EventRun,
    InMemoryJournal,
    bar_close_times,
    bar_path,
)
from trademk.backtest.result import OpenPosition
from trademk.backtest.trades import TradeLedger
from trademk.domain.calendar import NyseCalendar
from trademk.domain.fills import Fill
from trademk.domain.instruments import asset_class_of
from trademk.domain.market import Tick, TickKind
from trademk.domain.order_events import OrderFilled
from trademk.domain.orders import Order, OrderStatus
from trademk.domain.portfolio import Portfolio
from trademk.domain.risk import RiskLimits
from trademk.engine.clock import SimClock, ns_to_datetime
from trademk.engine.journal_writer import JournalWriter
from trademk.engine.oms import OrderManager
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.risk_engine import RiskEngine
from trademk.strategies.bars import Bars
from trademk.strategies.base import IntentKind, OrderIntent, Strategy
from trademk.venues.paper import BpsFee, PaperVenue

__all__ = ["EventBacktest", "EventRun", "run_event"]

T = TypeVar("T")
_SETTLE_ROUNDS: Final = 1000
_FAR_FUTURE_NS: Final = 2**62


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


class EventBacktest:
    """One event-driven run of ``strategy`` over ``bars``; see the module docstring."""

    def __init__(
        self,
        strategy: Strategy,
        bars: Bars,
        settings: RunSettings,
        *,
        risk_limits: RiskLimits | None = None,
        exchange: str = "backtest",
    ) -> None:
        if len(bars) == 0:
            raise ValueError("no bars to backtest")
        self.strategy = strategy
        self.bars = bars
        self.settings = settings
        self.symbol = settings.symbol
        self.exchange = exchange
        self.close_ns = bar_close_times(bars.ts)
        self.clock = SimClock(int(bars.ts[0]))
        self.prices = LatestPriceCache()
        self.venue = PaperVenue(
            self.prices,
            self.clock,
            starting_cash=_decimal(settings.cash),
            slippage_bps=_decimal(settings.slippage) * 10_000,
            fee_model=BpsFee(_decimal(settings.commission) * 10_000),
            day_end=lambda _symbol, _placed: _FAR_FUTURE_NS,
            id_factory=self._venue_ids(),
            expiry_poll_interval=None,
        )
        self.portfolio = Portfolio(_decimal(settings.cash))
        self.journal = JournalWriter(InMemoryJournal(), coalesce=0.0)
        last_day = ns_to_datetime(int(bars.ts[-1])).date()
        self.risk = RiskEngine(
            limits=risk_limits or BACKTEST_RISK_LIMITS,
            prices=self.prices,
            portfolio=self.portfolio,
            clock=self.clock,
            calendar=NyseCalendar(last_day),
            asset_classes={self.symbol: asset_class_of(self.symbol)},
            open_orders=self._working_orders,
        )
        self.oms = OrderManager(
            self.venue,
            self.risk,
            self.portfolio,
            self.journal,
            self.clock,
            {self.symbol: asset_class_of(self.symbol)},
        )
        self.router = IntentRouter(
            self.portfolio,
            self.symbol,
            cash=settings.cash,
            commission=settings.commission,
            slippage=settings.slippage,
            lot_size=settings.lot_size,
            strategy_id=strategy.name or type(strategy).__name__,
        )
        self.ledger = TradeLedger()
        self.oms.on_fill(self._on_fill)
        self._working: dict[str, Order] = {}
        self._bar = 0
        self._fills = 0
        self._checkpoints: list[tuple[int, float, float]] = []
        self._ruined_at: int | None = None
        self.counters = {"orders": 0, "denied": 0, "rejected": 0}

    @staticmethod
    def _venue_ids() -> Any:
        counter = iter(range(1, 2**62))
        return lambda: f"paper-{next(counter)}"

    def _working_orders(self) -> Iterable[Order]:
        return [order for order in self._working.values() if order.is_open]

    def _on_fill(self, order: Order, event: OrderFilled) -> None:
        fill: Fill = event.fill
        signed = float(fill.signed_qty)
        self._fills += 1
        self.ledger.apply(self._bar, signed, float(fill.price), float(fill.fee))
        self.router.on_fill(fill)
        self.strategy.on_fill(fill)

    # -- running ------------------------------------------------------------------

    async def run(self) -> EventRun:
        """Run every bar through the chain and collect equity and trades."""
        await self.venue.start()
        self.journal.start()
        await self.oms.start()
        try:
            self.strategy.bind(self.router)
            if not self.strategy.is_prepared_for(self.bars):
                self.strategy.prepare(self.bars)
            self.strategy.on_start()
            await self._run_bars()
            self.strategy.on_stop()
        finally:
            await self.oms.stop()
            await self.venue.close()
            await self.journal.stop()
        return self._result()

    async def _run_bars(self) -> None:
        n = len(self.bars)
        decision_bars = self._decision_bars()
        cursor = 0
        i = int(decision_bars[0]) if len(decision_bars) else n
        while i < n:
            await self._process_bar(i, is_decision=cursor < len(decision_bars)
                                    and decision_bars[cursor] == i)  # fmt: skip
            if self._ruined_at is not None:
                return
            while cursor < len(decision_bars) and decision_bars[cursor] <= i:
                cursor += 1
            following = int(decision_bars[cursor]) if cursor < len(decision_bars) else n
            i = self._next_bar(i, following)
        if self.settings.close_at_end:
            await self._close_at_end(n - 1)

    def _decision_bars(self) -> np.ndarray:
        first = self.strategy.first_decision_bar
        signals = self.strategy.prepared_signals
        if signals is not None and type(self.strategy).uses_default_on_bar():
            active = signals.active_bars()
            return active[active >= first]
        return np.arange(first, len(self.bars), dtype=np.int64)

    def _next_bar(self, i: int, following: int) -> int:
        """The next bar that needs a visit: the next one while something is pending or
        working, else the next decision bar, or earlier if the position goes bust."""
        if self.router.pending or self._working_orders():
            return i + 1
        position = self.router.position()
        if position and following > i + 1:
            closes = self.bars.close[i + 1 : following]
            busted = np.flatnonzero(self.router.cash() + position * closes <= 0)
            if len(busted):
                return i + 1 + int(busted[0])
        return following

    async def _process_bar(self, i: int, *, is_decision: bool) -> None:
        self._bar = i
        bars = self.bars
        fills_before = self._fills
        if self.router.pending and self.settings.fill == "next_open":
            await self._execute(bars.open[i], int(bars.ts[i]))
        if self._working_orders():
            await self._replay_bar(i)
        self.clock.set(int(self.close_ns[i]))
        self.router.set_last_price(float(bars.close[i]))
        if is_decision:
            self.strategy.set_current_bar(i)
            self.strategy.on_bar(bars.bar(i, self.exchange))
            if self.router.pending and self.settings.fill == "close":
                await self._execute(bars.close[i], int(self.close_ns[i]))
        if self._fills != fills_before or self._working:
            self._checkpoint(i)
        await self._check_ruin(i)

    def _checkpoint(self, i: int) -> None:
        self._checkpoints.append((i, float(self.portfolio.cash), self.router.position()))

    async def _check_ruin(self, i: int) -> None:
        position = self.router.position()
        if not position or self.router.cash() + position * float(self.bars.close[i]) > 0:
            return
        self.router.take_pending()
        self.router.submit(OrderIntent(IntentKind.CLOSE, bar_index=i))
        await self._execute(self.bars.close[i], int(self.close_ns[i]))
        self._checkpoint(i)
        self._ruined_at = i

    async def _close_at_end(self, last: int) -> None:
        self._bar = last
        self.router.take_pending()
        for order in self._working_orders():
            await self.oms.cancel(order.client_order_id)
            await self._settle(order)
        self.router.submit(OrderIntent(IntentKind.CLOSE, bar_index=last))
        await self._execute(self.bars.close[last], int(self.close_ns[last]))
        self._checkpoint(last)

    async def _publish(self, price: float, ts: int) -> None:
        self.clock.set(max(ts, self.clock.now_ns()))
        self.prices.update(Tick(self.symbol, self.exchange, TickKind.TRADE, ts, float(price)))
        if self._working:
            await asyncio.sleep(0)  # let the OMS apply fills of resting orders

    async def _replay_bar(self, i: int) -> None:
        bars = self.bars
        for price, ts in bar_path(bars, i, self.close_ns[i]):
            await self._publish(price, ts)
            if not self._working_orders():
                break

    async def _execute(self, price: float, ts: int) -> None:
        await self._publish(price, ts)
        price = float(price)
        self.router.set_last_price(price)
        self.oms.mark(self.symbol, _decimal(price))
        for intent in self.router.take_pending():
            request = self.router.request_for(intent, price)
            if request is None:
                continue
            order = await self.oms.submit(request)
            self.counters["orders"] += 1
            await self._settle(order)
            if order.status is OrderStatus.DENIED:
                self.counters["denied"] += 1
            elif order.status is OrderStatus.REJECTED:
                self.counters["rejected"] += 1
            elif order.is_open:
                self._working[order.client_order_id] = order

    async def _settle(self, order: Order) -> None:
        """Yield until the OMS has applied the venue's answer to ``order``.

        The OMS applies the paper venue's answer to a submission before ``submit``
        returns, so a new order is settled at once; a cancel's answer comes
        through the venue's event stream, which the OMS task drains in one turn.
        """
        for _ in range(_SETTLE_ROUNDS):
            if order.status not in (OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL):
                break
            await asyncio.sleep(0)
        else:
            raise RuntimeError(f"the venue never answered order {order.client_order_id}")
        if not self._working:
            return
        for client_order_id in [k for k, o in self._working.items() if not o.is_open]:
            del self._working[client_order_id]

    # -- results --------------------------------------------------------------------

    def _result(self) -> EventRun:
        n = len(self.bars)
        cash = np.full(n, float(self.settings.cash))
        position = np.zeros(n)
        for k, (bar, bar_cash, held) in enumerate(self._checkpoints):
            end = self._checkpoints[k + 1][0] if k + 1 < len(self._checkpoints) else n
            cash[bar:end] = bar_cash
            position[bar:end] = held
        equity = cash + position * self.bars.close
        if self._ruined_at is not None:
            equity[self._ruined_at :] = 0.0
        lots = self.ledger.open_lots
        still_open = None
        if lots and self._ruined_at is None:
            still_open = OpenPosition(sum(lot.size for lot in lots), lots[0].price, lots[0].bar)
        return EventRun(equity, self.ledger, still_open, dict(self.counters), self.router.dropped)


def _run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion, in a helper thread if a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    worker = threading.Thread(target=target, name="trademk-event-backtest")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def run_event(
    strategy: Strategy,
    bars: Bars,
    index: pd.DatetimeIndex,
    settings: RunSettings,
    *,
    risk_limits: RiskLimits | None = None,
) -> tuple[np.ndarray, pd.DataFrame, OpenPosition | None]:
    """Run the event-driven backtest; returns equity per bar, trades and any open position."""
    run = _run_sync(EventBacktest(strategy, bars, settings, risk_limits=risk_limits).run())
    return run.equity, run.ledger.frame(index), run.open_position
