"""The trading core of one process: risk, OMS, portfolio, journal and signal execution."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import structlog

from trademk.domain.fills import Fill
from trademk.domain.market import Tick
from trademk.domain.orders import Order
from trademk.domain.portfolio import Portfolio
from trademk.domain.risk import RiskLimits
from trademk.domain.signals import OrderRequest
from trademk.engine.journal_writer import JournalWriter, TradingJournal
from trademk.engine.oms import OrderManager
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.reconciliation import Reconciler, ReconciliationReport
from trademk.engine.risk_engine import RiskEngine
from trademk.engine.signal_queue import SignalQueue

log = structlog.get_logger(__name__)


class OrderRecords(Protocol):
    """Read access to stored orders for the API (storage/trading_repository.py)."""

    async def order_records(self, *args: Any, **kwargs: Any) -> list[Any]: ...

    async def order_record(self, key: str) -> Any: ...


@runtime_checkable
class RestorableVenue(Protocol):
    """A venue that keeps its account in memory (the paper venue) and can be rebuilt."""

    def restore(self, fills: Iterable[Fill], open_orders: Iterable[Order] = ()) -> int: ...


@runtime_checkable
class SharedAccountVenue(Protocol):
    """A venue several execution workers reach through venues of their own (the paper
    venue): each books the fills the others made, so all see the whole account."""

    def book(self, fill: Fill) -> bool: ...


class TradingCore:
    """Owns the OMS and its collaborators and runs signal execution and marking."""

    def __init__(
        self,
        *,
        oms: OrderManager,
        risk: RiskEngine,
        journal: JournalWriter,
        signals: SignalQueue,
        prices: LatestPriceCache,
        repository: OrderRecords,
        mark_interval: float = 5.0,
        execute_signals: bool = True,
        price_wait: float = 0.0,
    ) -> None:
        self.oms = oms
        self.risk = risk
        self.journal = journal
        self.signals = signals
        self.prices = prices
        self.repository = repository
        self.mark_interval = mark_interval
        self.execute_signals = execute_signals
        # Seconds to wait for a first price before taking signals: a worker whose
        # prices come from another process would otherwise deny a backlog of market
        # orders queued while it was down as impossible to value.
        self.price_wait = price_wait
        self.reconciliation: ReconciliationReport | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def portfolio(self) -> Portfolio:
        return self.oms.portfolio

    async def start(self, journal: TradingJournal) -> None:
        """Restore from the journal, reconcile with the venue, then start executing."""
        self.journal.start()
        fills = await journal.fills(self.oms.venue.name)
        for fill in fills:
            self.portfolio.apply(fill)
        await self.oms.start()
        if isinstance(self.oms.venue, RestorableVenue):
            self.oms.venue.restore(fills, self.oms.open_orders())
        self.reconciliation = await Reconciler(self.oms).run()
        if not self.reconciliation.clean:
            self.risk.halt("reconciliation: " + "; ".join(self.reconciliation.discrepancies))
        if self.execute_signals:
            self._tasks.append(asyncio.create_task(self._execute_signals()))
        self._tasks.append(asyncio.create_task(self._mark_periodically()))

    async def _execute_signals(self) -> None:
        await self._first_price()
        await self.signals.consume(self.execute)

    async def _first_price(self) -> None:
        """Return once any price is known, or after ``price_wait`` seconds."""
        if not self.price_wait or len(self.prices):
            return
        priced = asyncio.Event()

        def on_tick(_tick: Tick) -> None:
            priced.set()

        self.prices.add_listener(on_tick)
        try:
            async with asyncio.timeout(self.price_wait):
                await priced.wait()
        except TimeoutError:
            log.warning("no price yet; taking signals anyway", waited_s=self.price_wait)
        finally:
            self.prices.remove_listener(on_tick)

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the signal in hand, then stop marking, the OMS and the journal.

        The signal consumer is asked to stop first: cancelling it inside a Redis
        read would turn into a connection error its retry loop swallows.
        """
        if self.execute_signals:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.signals.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.oms.stop()
        await self.journal.stop()

    async def execute(self, request: OrderRequest) -> None:
        """Signal handler: the order is durable (submitted or denied) when this returns."""
        await self.oms.submit(request)
        await self.journal.flush()

    def marked_portfolio(self) -> Portfolio:
        """The portfolio with every open position marked at the latest price."""
        self.mark_to_market()
        return self.portfolio

    def mark_to_market(self) -> None:
        """Mark every open position at the latest price."""
        for position in list(self.portfolio.open_positions()):
            price = self.prices.last_price(position.symbol)
            if price is not None:
                self.portfolio.mark(position.symbol, Decimal(str(price)))

    async def _mark_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.mark_interval)
            self.mark_to_market()
            for position in self.portfolio.open_positions():
                self.journal.position(position)

    async def halt(self, reason: str, cancel_open_orders: bool = True) -> int:
        """Kill switch: deny every new order and cancel the open ones."""
        self.risk.halt(reason)
        return await self.oms.cancel_all(reason) if cancel_open_orders else 0

    def update_limits(self, limits: RiskLimits) -> None:
        self.risk.update_limits(limits)

    def status(self) -> dict[str, Any]:
        """Health view: degraded while reconciliation left differences unexplained."""
        unexplained = self.reconciliation is not None and not self.reconciliation.clean
        return {
            **self.oms.status(),
            "state": "degraded" if unexplained else str(self.oms.lifecycle.state),
            "reason": self.risk.state_reason if unexplained else self.oms.lifecycle.reason,
            "trading_state": str(self.risk.state),
            "state_reason": self.risk.state_reason,
            "journal": self.journal.status(),
            "signals": self.signals.status(),
        }
