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
nothing; with nothing queued or resting either, such bars are skipped, except a
bar whose close would take equity to 0 (``BustGuard`` finds it). The bars run
synchronously: the OMS's ``submit_now`` gets the paper venue's answer at once,
and fills of resting orders are applied right after each print
(``apply_venue_events``), as the OMS's event task would apply them live.
Equity is cash plus the position at each close, taken from the OMS portfolio
after each bar that traded. If it falls to 0 or below, the position
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
    BustGuard,
    EventRun,
    InMemoryJournal,
    bar_close_times,
    bar_path,
    cyclic_gc_paused,
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
        self._fill_at_open = settings.fill == "next_open"
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
        """The open orders of the run (the risk engine counts them)."""
        if not self._working:
            return ()
        return [order for order in self._working.values() if order.is_open]

    def _on_fill(self, order: Order, event: OrderFilled) -> None:
        fill: Fill = event.fill
        self._fills += 1
        self.ledger.apply(self._bar, float(fill.signed_qty), float(fill.price), float(fill.fee))
        self.router.on_fill(fill)
        self.strategy.on_fill(fill)

    # -- running ------------------------------------------------------------------

    async def run(self) -> EventRun:
        """Run every bar through the chain and collect equity and trades.

        The components start and stop on the event loop as they do live; the bars
        themselves run synchronously: the paper venue answers each order at once
        (``OrderManager.submit_now``) and fills of resting orders are applied right
        after each price is published (``OrderManager.apply_venue_events``).
        """
        await self.venue.start()
        self.journal.start()
        await self.oms.start()
        try:
            self.strategy.bind(self.router)
            if not self.strategy.is_prepared_for(self.bars):
                self.strategy.prepare(self.bars)
            self.strategy.on_start()
            with cyclic_gc_paused():
                self._run_bars()
            if self.settings.close_at_end and self._ruined_at is None:
                await self._close_at_end(len(self.bars) - 1)
            self.strategy.on_stop()
        finally:
            await self.oms.stop()
            await self.venue.close()
            await self.journal.stop()
        return self._result()

    def _run_bars(self) -> None:
        n = len(self.bars)
        decisions = self._decision_bars()
        guard = BustGuard(self.bars.close, decisions)
        upcoming = decisions.tolist()
        upcoming.append(n)
        cursor = 0  # upcoming[cursor] is the next decision bar not yet passed
        i = upcoming[0]
        while i < n:
            is_decision = upcoming[cursor] == i
            if is_decision:
                cursor += 1
            self._process_bar(i, is_decision=is_decision)
            if self._ruined_at is not None:
                return
            following = upcoming[cursor]
            if self.router.pending or self._working:
                i += 1
            elif following > i + 1 and self.router.position():
                i = self._until_bust(guard, cursor - 1, i + 1, following)
            else:
                i = following

    def _decision_bars(self) -> np.ndarray:
        first = self.strategy.first_decision_bar
        signals = self.strategy.prepared_signals
        if signals is not None and type(self.strategy).uses_default_on_bar():
            active = signals.active_bars()
            return active[active >= first]
        return np.arange(first, len(self.bars), dtype=np.int64)

    def _until_bust(self, guard: BustGuard, segment: int, start: int, stop: int) -> int:
        """The first bar in ``[start, stop)`` whose close takes equity to 0 or below,
        else ``stop``: with nothing pending or working, only that can happen there."""
        bust = guard.first_bust(segment, start, stop, self.router.cash(), self.router.position())
        return stop if bust is None else bust

    def _process_bar(self, i: int, *, is_decision: bool) -> None:
        self._bar = i
        bars = self.bars
        router = self.router
        fills_before = self._fills
        if router.pending and self._fill_at_open:
            self._execute(float(bars.open[i]), int(bars.ts[i]))
        if self._working:
            self._replay_bar(i)
        close = float(bars.close[i])
        close_ns = int(self.close_ns[i])
        self.clock.set(close_ns)
        router.set_last_price(close)
        if is_decision:
            strategy = self.strategy
            strategy.set_current_bar(i)
            strategy.on_bar(bars.bar(i, self.exchange))
            if router.pending and not self._fill_at_open:
                self._execute(close, close_ns)
        if self._fills != fills_before or self._working:
            self._checkpoint(i)
        position = router.position()
        if position and router.cash() + position * close <= 0:
            self._ruin(i, close, close_ns)

    def _checkpoint(self, i: int) -> None:
        self._checkpoints.append((i, float(self.portfolio.cash), self.router.position()))

    def _ruin(self, i: int, close: float, close_ns: int) -> None:
        """Equity fell to 0 or below at bar ``i``'s close: close out and stop the run."""
        self.router.take_pending()
        self.router.submit(OrderIntent(IntentKind.CLOSE, bar_index=i))
        self._execute(close, close_ns)
        self._checkpoint(i)
        self._ruined_at = i

    async def _close_at_end(self, last: int) -> None:
        self._bar = last
        self.router.take_pending()
        for order in self._working_orders():
            await self.oms.cancel(order.client_order_id)
            self._apply_venue_events()
            if order.is_open:
                raise RuntimeError(f"the venue never answered order {order.client_order_id}")
        self.router.submit(OrderIntent(IntentKind.CLOSE, bar_index=last))
        self._execute(float(self.bars.close[last]), int(self.close_ns[last]))
        self._checkpoint(last)

    def _publish(self, price: float, ts: int) -> None:
        clock = self.clock
        if ts > clock.now_ns():
            clock.set(ts)
        self.prices.update(Tick(self.symbol, self.exchange, TickKind.TRADE, ts, price))
        if self._working:
            self._apply_venue_events()  # fills of resting orders on this print

    def _apply_venue_events(self) -> None:
        self.oms.apply_venue_events()
        self._forget_finished()

    def _forget_finished(self) -> None:
        """Drop the orders that stopped working (filled, canceled, expired)."""
        working = self._working
        for client_order_id in [k for k, o in working.items() if not o.is_open]:
            del working[client_order_id]

    def _replay_bar(self, i: int) -> None:
        for price, ts in bar_path(self.bars, i, int(self.close_ns[i])):
            self._publish(price, ts)
            if not self._working:
                break

    def _execute(self, price: float, ts: int) -> None:
        """Send the queued intents as orders with the market at ``price``."""
        self._publish(price, ts)
        router = self.router
        router.set_last_price(price)
        self.oms.mark(self.symbol, _decimal(price))
        counters = self.counters
        for intent in router.take_pending():
            request = router.request_for(intent, price)
            if request is None:
                continue
            order = self.oms.submit_now(request)
            counters["orders"] += 1
            status = order.status
            if status is OrderStatus.DENIED:
                counters["denied"] += 1
            elif status is OrderStatus.REJECTED:
                counters["rejected"] += 1
            elif order.is_open:
                self._working[order.client_order_id] = order
        if self._working:
            self._forget_finished()  # a submission also delivers earlier fills

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
