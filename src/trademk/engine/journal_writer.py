"""Write-behind persistence for the OMS: the hot path never waits on the database.

Orders (latest state), fills and positions are queued in memory, coalesced and
written in one transaction per round. A failed write is retried with backoff
and nothing queued is dropped; ``flush()`` waits until everything queued
before the call is durable (signal acks and API answers use it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any, Protocol

import structlog

from trademk.domain.fills import Fill
from trademk.domain.orders import Order
from trademk.domain.position import Position
from trademk.engine.lifecycle import ComponentState, Lifecycle

log = structlog.get_logger(__name__)


class TradingJournal(Protocol):
    """Durable storage of orders, fills and positions (storage/trading_repository.py)."""

    async def save(
        self,
        orders: Iterable[Order] = (),
        fills: Iterable[Fill] = (),
        positions: Iterable[Position] = (),
    ) -> None: ...

    async def order(self, client_order_id: str) -> Order | None: ...

    async def open_orders(self) -> list[Order]: ...

    async def fills(self, venue: str | None = None) -> list[Fill]: ...

    async def client_order_ids(self) -> set[str]: ...

    async def claim(self, order: Order) -> bool: ...

    async def take_over(self, client_order_id: str, now_ns: int, stale_ns: int) -> bool: ...


class JournalWriter:
    """Queues and writes; one background task does the I/O."""

    def __init__(
        self,
        journal: TradingJournal,
        retry_initial: float = 0.05,
        retry_max: float = 5.0,
        coalesce: float = 0.01,
    ) -> None:
        self.journal = journal
        self._orders: dict[str, Order] = {}
        self._fills: list[Fill] = []
        self._positions: dict[tuple[str, str], Position] = {}
        self._wake = asyncio.Event()
        self._awake = False  # mirrors ``_wake.is_set()``
        self._queued = 0
        self._written = 0
        self._written_changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._coalesce = coalesce
        self._flush_waiters = 0
        self._hurry = asyncio.Event()
        self.lifecycle = Lifecycle("journal")
        self.write_errors = 0

    # The three queueing calls are on the trading hot path: each only records the
    # object and wakes the writer task if it is not awake already.

    def order(self, order: Order) -> None:
        self._orders[order.client_order_id] = order
        self._queued += 1
        if not self._awake:
            self._wake_writer()

    def fill(self, fill: Fill) -> None:
        self._fills.append(fill)
        self._queued += 1
        if not self._awake:
            self._wake_writer()

    def position(self, position: Position) -> None:
        self._positions[(position.symbol, position.venue)] = position
        self._queued += 1
        if not self._awake:
            self._wake_writer()

    def _wake_writer(self) -> None:
        self._awake = True
        self._wake.set()

    async def flush(self) -> None:
        """Wait until everything queued so far is written.

        Someone is waiting, so the next round starts without the coalescing pause.
        """
        target = self._queued
        if self._written >= target:
            return
        self._flush_waiters += 1
        self._hurry.set()
        try:
            async with self._written_changed:
                await self._written_changed.wait_for(lambda: self._written >= target)
        finally:
            self._flush_waiters -= 1
            if not self._flush_waiters:
                self._hurry.clear()

    def start(self) -> None:
        if self._task is None:
            self.lifecycle.to(ComponentState.RUNNING)
            self._task = asyncio.create_task(self._run(), name="journal-writer")

    async def stop(self) -> None:
        """Write what is queued (while the database answers), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout=10)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self.lifecycle.to(ComponentState.STOPPED)

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            await self._wake.wait()
            # Let a burst accumulate (one transaction per round instead of one per
            # change) unless a caller is waiting for durability.
            if not self._flush_waiters:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), self._coalesce)
            self._wake.clear()
            self._awake = False
            target = self._queued
            orders, fills, positions = self._take()
            try:
                await self.journal.save(orders, fills, positions)
            except Exception as err:
                self._put_back(orders, fills, positions)
                self.write_errors += 1
                self.lifecycle.to(ComponentState.DEGRADED, f"database write failed: {err}")
                log.warning("journal write failed; retrying", error=str(err), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                self._wake_writer()
                continue
            delay = self._retry_initial
            if self.lifecycle.state is ComponentState.DEGRADED:
                self.lifecycle.to(ComponentState.RUNNING)
                log.info("journal writes recovered")
            async with self._written_changed:
                self._written = target
                self._written_changed.notify_all()

    def _take(self) -> tuple[list[Order], list[Fill], list[Position]]:
        orders, fills, positions = (
            list(self._orders.values()),
            self._fills,
            list(self._positions.values()),
        )
        self._orders, self._fills, self._positions = {}, [], {}
        return orders, fills, positions

    def _put_back(self, orders: list[Order], fills: list[Fill], positions: list[Position]) -> None:
        for order in orders:
            self._orders.setdefault(order.client_order_id, order)
        self._fills[:0] = fills
        for position in positions:
            self._positions.setdefault((position.symbol, position.venue), position)

    def status(self) -> dict[str, Any]:
        return {
            "state": str(self.lifecycle.state),
            "reason": self.lifecycle.reason,
            "pending": self._queued - self._written,
            "write_errors": self.write_errors,
        }
