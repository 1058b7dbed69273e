"""Catching up after the ``trade_updates`` stream (re)connects.

Alpaca does not replay updates sent while nobody listened. So each time the
stream listens again, the orders that may have changed meanwhile are fetched
(``GET /v2/orders?status=all&after=...``) and each goes through the
``OrderSynchronizer``, which emits only what was not emitted yet.

``after`` filters on submission time, so it is the earliest of the last update
seen (or the last catch-up) and the submission of every order we still track
as open, minus ``margin`` for clock skew. Orders we do not track are news only
if submitted after the last update seen (placed elsewhere while we were not
listening); tracked open orders missing from the listing are fetched one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from trademk.domain.errors import RejectedError, TransientError
from trademk.domain.order_events import OrderEvent
from trademk.engine.clock import Clock
from trademk.venues.alpaca.alpaca_sdk import QueryOrderStatus
from trademk.venues.alpaca.order_sync import OrderSynchronizer
from trademk.venues.alpaca.trading_rest import AlpacaRest
from trademk.venues.alpaca.trading_schemas import AlpacaWireError

log = structlog.get_logger(__name__)


class CatchUp:
    """Runs one catch-up at a time, retrying until it succeeds; ``schedule()`` it."""

    def __init__(
        self,
        rest: AlpacaRest,
        sync: OrderSynchronizer,
        emit: Callable[[list[OrderEvent]], None],
        clock: Clock,
        margin_ns: int,
    ) -> None:
        self.rest = rest
        self.sync = sync
        self.emit = emit
        self.clock = clock
        self.margin_ns = margin_ns
        self.runs = 0
        self.last_error: str | None = None
        self.last_seen_ns = clock.now_ns()
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def saw(self, ts_ns: int) -> None:
        """The stream delivered an update of time ``ts_ns``."""
        self.last_seen_ns = max(self.last_seen_ns, ts_ns)

    def schedule(self) -> None:
        """Catch up now, or once more after the run in progress."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._run(), name="alpaca-catch-up")

    async def wait(self) -> None:
        """Until the current run (if any) is done; cancelling the waiter spares the run."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = self.rest.backoff()
        while True:
            self._again = False
            try:
                await self._once()
            except (TransientError, RejectedError, AlpacaWireError) as err:
                self.last_error = f"catch-up failed: {err}"
                log.warning("catching up on Alpaca orders failed; retrying", error=str(err))
                await asyncio.sleep(backoff.next_delay())
                continue
            if not self._again:
                return

    async def _once(self) -> None:
        started_ns = self.clock.now_ns()
        since = self.last_seen_ns - self.margin_ns
        open_orders = self.sync.open_orders()
        oldest = min((t.submitted_ns for t in open_orders if t.submitted_ns), default=since)
        listed = await self.rest.list_orders(
            QueryOrderStatus.ALL, after_ns=max(0, min(since, oldest - self.margin_ns))
        )
        seen = set()
        for order in listed:
            if self.sync.get(order.client_order_id) is None and order.submitted_ns < since:
                continue
            seen.add(order.client_order_id)
            self.emit(self.sync.on_snapshot(order))
        for tracked in open_orders:
            if tracked.client_order_id not in seen:
                found = await self.rest.find_order(tracked.client_order_id)
                if found is not None:
                    self.emit(self.sync.on_snapshot(found))
        self.saw(started_ns)
        self.runs += 1
