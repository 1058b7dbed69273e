"""Test support for the paper venue: a started venue over a price cache fed by hand."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trademk.domain.fills import Fill
from trademk.domain.market import NANOS_PER_MILLI, Tick, TickKind
from trademk.domain.order_events import OrderCanceled, OrderEvent, OrderFilled, OrderRejected
from trademk.domain.orders import Order, OrderSide, OrderType, TimeInForce
from trademk.engine.clock import SimClock, datetime_to_ns
from trademk.engine.price_cache import LatestPriceCache
from trademk.venues.paper import PaperVenue, SessionDayEnd

# Monday 2024-06-03 14:00 UTC, inside the NYSE session (close 20:00 UTC).
START_NS = datetime_to_ns(datetime(2024, 6, 3, 14, 0, tzinfo=UTC))
WAIT_SECONDS = 2.0
DAY_END = SessionDayEnd()  # shared so the NYSE calendar is built once per worker
_ids = itertools.count(1)


@dataclass
class PaperWorld:
    """A started paper venue, its price cache and clock, and every event it emitted."""

    venue: PaperVenue
    prices: LatestPriceCache
    clock: SimClock
    events: list[OrderEvent] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def start_recording(self) -> None:
        self._task = asyncio.create_task(self._record())

    async def _record(self) -> None:
        async for event in self.venue.events():
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (at most ``WAIT_SECONDS``) until ``predicate()`` holds after an event."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), WAIT_SECONDS)

    async def settle(self) -> None:
        """Let the recorder take every event the venue has queued."""
        for _ in range(3):
            await asyncio.sleep(0)

    async def stop(self) -> None:
        await self.venue.close()
        if self._task is not None:
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 1.0)

    # -- market ----------------------------------------------------------------

    def quote(
        self,
        symbol: str,
        bid: float | None,
        ask: float | None,
        bid_size: float | None = None,
        ask_size: float | None = None,
    ) -> None:
        self.clock.advance(NANOS_PER_MILLI)
        mid = (bid + ask) / 2 if bid is not None and ask is not None else (bid or ask or 0.0)
        self.prices.update(
            Tick(
                symbol=symbol,
                exchange="TEST",
                kind=TickKind.QUOTE,
                ts=self.clock.now_ns(),
                price=mid,
                bid=bid,
                bid_size=bid_size,
                ask=ask,
                ask_size=ask_size,
            )
        )

    def trade(self, symbol: str, price: float, qty: float = 0.0) -> None:
        self.clock.advance(NANOS_PER_MILLI)
        self.prices.update(
            Tick(
                symbol=symbol,
                exchange="TEST",
                kind=TickKind.TRADE,
                ts=self.clock.now_ns(),
                price=price,
                qty=qty,
            )
        )

    # -- orders ----------------------------------------------------------------

    def order(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: str | Decimal,
        *,
        type: OrderType = OrderType.MARKET,
        limit: str | None = None,
        stop: str | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        cid: str | None = None,
    ) -> Order:
        return Order(
            client_order_id=cid or f"o{next(_ids)}",
            symbol=symbol,
            side=OrderSide(side),
            type=type,
            qty=Decimal(qty),
            venue=self.venue.name,
            created_ns=self.clock.now_ns(),
            limit_price=None if limit is None else Decimal(limit),
            stop_price=None if stop is None else Decimal(stop),
            time_in_force=tif,
        )

    async def submit(self, *args: Any, **kwargs: Any) -> Order:
        order = self.order(*args, **kwargs)
        await self.venue.submit(order)
        await self.settle()
        return order

    def of(self, cid: str) -> list[OrderEvent]:
        return [e for e in self.events if e.client_order_id == cid]

    def fills(self, cid: str | None = None) -> list[Fill]:
        return [
            e.fill
            for e in self.events
            if isinstance(e, OrderFilled) and (cid is None or e.client_order_id == cid)
        ]

    def reason(self, cid: str) -> str:
        """The reason of the order's last event, which must be a rejection or a cancel."""
        last = self.of(cid)[-1]
        assert isinstance(last, OrderRejected | OrderCanceled), last
        return last.reason

    def kinds(self, cid: str) -> list[str]:
        return [type(e).__name__ for e in self.of(cid)]


WorldFactory = Callable[..., Awaitable[PaperWorld]]
