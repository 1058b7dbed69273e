"""Fills across processes: on the bus (``fills`` topic) and back from the journal.

The OMS publishes each fill it books as ``engine.oms.fill_payload``; processes
without that OMS (the API's shared book, the strategies worker, the other
execution workers) turn the payload back into the same ``Fill`` with
``fill_of``. Over Redis the payload arrives as JSON: Decimals as their exact
strings, so nothing is lost on the way.

The bus is the fast path, not the record: while Redis is unreachable events
are dropped. ``FillFollower`` therefore also reads the app database, where
every worker journals its fills: once at start if asked (subscribing first, so
no fill falls between the two), then every ``resync_interval`` seconds for
those stored recently. Whoever it hands fills to must ignore one it has seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide
from trademk.engine.bus import MessageBus, Subscription, watch_topics

log = structlog.get_logger(__name__)

FILLS_TOPIC = "fills"
# A fill row's storage time is its transaction's start: look this far behind the newest
# one seen, so rows committed late by a slow transaction are still found.
_STORAGE_MARGIN = timedelta(seconds=30)


def fill_of(payload: Mapping[str, Any]) -> Fill:
    """The ``Fill`` a ``fills`` payload (``engine.oms.fill_payload``) describes.

    Raises ``KeyError``, ``TypeError``, ``ValueError`` or ``ArithmeticError``
    (a bad decimal) on a payload that lacks a field or holds a bad value.
    """
    strategy_id = payload.get("strategy_id")
    return Fill(
        client_order_id=str(payload["client_order_id"]),
        venue_order_id=str(payload.get("venue_order_id") or payload["client_order_id"]),
        trade_id=str(payload["trade_id"]),
        symbol=str(payload["symbol"]),
        side=OrderSide(payload["side"]),
        qty=Decimal(str(payload["qty"])),
        price=Decimal(str(payload["price"])),
        fee=Decimal(str(payload["fee"])),
        ts_ns=int(payload["ts"]),
        venue=str(payload["venue"]),
        strategy_id=str(strategy_id) if strategy_id else None,
    )


class StoredFills(Protocol):
    """Where workers journal their fills (storage/trading_repository.py)."""

    async def fills_recorded_since(
        self, venue: str, since: datetime | None
    ) -> tuple[list[Fill], datetime | None]: ...

    async def newest_fill_recorded(self, venue: str) -> datetime | None: ...


class FillFollower:
    """Hands every fill of ``venue`` to ``book`` — from the bus (when given one, at once)
    and from the database (every ``resync_interval`` seconds, and on ``catch_up``)."""

    def __init__(
        self,
        bus: MessageBus | None,
        stored: StoredFills,
        venue: str,
        book: Callable[[Fill], object],
        *,
        load_all: bool = True,
        skip_order: Callable[[str], bool] = lambda _cid: False,
        resync_interval: float = 10.0,
    ) -> None:
        self.bus = bus
        self.stored = stored
        self.venue = venue
        self.book = book
        self.load_all = load_all
        self.skip_order = skip_order
        self.resync_interval = resync_interval
        self.malformed = 0
        self._newest: datetime | None = None
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._tasks:
            return
        if self.bus is not None:
            self._subscription = self.bus.subscribe(FILLS_TOPIC, capacity=100_000)
            await watch_topics(self.bus, FILLS_TOPIC)
        if self.load_all:
            await self.catch_up()
        else:  # the caller booked every stored fill already; follow from the newest one
            self._newest = await self.stored.newest_fill_recorded(self.venue)
        self._tasks = [asyncio.create_task(self._resync_forever(), name="fills-resync")]
        if self._subscription is not None:
            self._tasks.append(
                asyncio.create_task(self._follow(self._subscription), name="fills-follow")
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    async def catch_up(self) -> int:
        """Book the fills stored since the newest one seen (minus a margin); how many."""
        since = None if self._newest is None else self._newest - _STORAGE_MARGIN
        fills, newest = await self.stored.fills_recorded_since(self.venue, since)
        for fill in fills:
            self.book(fill)
        if newest is not None:
            self._newest = newest if self._newest is None else max(self._newest, newest)
        return len(fills)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            try:
                await self.catch_up()
            except Exception as err:  # the database may be down for a while; try again later
                log.warning("fills resync failed", error=str(err))

    async def _follow(self, subscription: Subscription) -> None:
        async for _topic, payload in subscription:
            if self.skip_order(str(payload.get("client_order_id"))):
                continue
            try:
                fill = fill_of(payload)
            except (KeyError, TypeError, ValueError, ArithmeticError) as err:
                self.malformed += 1
                log.warning("malformed fill on the bus", error=str(err))
                continue
            if fill.venue == self.venue:
                self.book(fill)
