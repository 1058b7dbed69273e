"""The account as all execution workers trade it together.

With several execution workers each one books its own fills. Whoever wants
the whole account — the API, and every execution worker for its risk checks —
follows the fills every worker produces:

- from the ``fills`` topic of the bus, as they happen;
- from the app database, where every worker journals them: once at start
  (subscribing first, so no fill falls between the two), then every
  ``resync_interval`` seconds for those stored recently, which brings back any
  fill the bus lost while Redis was unreachable.

``Portfolio.apply`` ignores a fill it booked already, so overlaps count once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import structlog

from trademk.domain.fills import Fill
from trademk.domain.portfolio import Portfolio
from trademk.engine.bus import MessageBus, Subscription
from trademk.engine.fill_relay import fill_of
from trademk.engine.price_cache import LatestPriceCache

log = structlog.get_logger(__name__)

FILLS_TOPIC = "fills"
# A fill row's storage time is its transaction's start: look this far behind the newest
# one seen, so rows committed late by a slow transaction are still found.
_STORAGE_MARGIN = timedelta(seconds=30)


class StoredFills(Protocol):
    """Where workers journal their fills (storage/trading_repository.py)."""

    async def fills_recorded_since(
        self, venue: str, since: datetime | None
    ) -> tuple[list[Fill], datetime | None]: ...


class FillFollower:
    """Hands every fill of ``venue`` to ``book`` — from the bus and from the database."""

    def __init__(
        self,
        bus: MessageBus,
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
        self._subscription = self.bus.subscribe(FILLS_TOPIC, capacity=100_000)
        watch = getattr(self.bus, "watch", None)
        if watch is not None:
            await watch(FILLS_TOPIC)
        if self.load_all:
            await self.catch_up()
        else:  # the caller booked every stored fill already; follow from the newest one
            _, self._newest = await self.stored.fills_recorded_since(self.venue, None)
        self._tasks = [
            asyncio.create_task(self._follow(self._subscription), name="fills-follow"),
            asyncio.create_task(self._resync_forever(), name="fills-resync"),
        ]

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


class SharedBook:
    """The whole account, for a process without an OMS (the API).

    ``starting_cash`` may be unknown at first (a broker account reports it through
    the execution workers): fills wait until it is known, then the book is built.
    """

    def __init__(
        self,
        bus: MessageBus,
        stored: StoredFills,
        prices: LatestPriceCache,
        venue: str,
        starting_cash: Decimal | None,
        *,
        resync_interval: float = 10.0,
    ) -> None:
        self.prices = prices
        self.venue = venue
        self._portfolio: Portfolio | None = None
        self._waiting: list[Fill] = []
        self.follower = FillFollower(
            bus, stored, venue, self._book, resync_interval=resync_interval
        )
        if starting_cash is not None:
            self.know_starting_cash(starting_cash)

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def know_starting_cash(self, cash: Decimal) -> None:
        """Build the book once the account's starting cash is known (later calls: no-op)."""
        if self._portfolio is not None:
            return
        self._portfolio = Portfolio(cash)
        for fill in self._waiting:
            self._portfolio.apply(fill)
        self._waiting = []

    def portfolio(self) -> Portfolio | None:
        """The book marked at the latest prices; None while the starting cash is unknown."""
        book = self._portfolio
        if book is None:
            return None
        for position in list(book.open_positions()):
            price = self.prices.last_price(position.symbol)
            if price is not None:
                book.mark(position.symbol, Decimal(str(price)))
        return book

    def qty(self, symbol: str) -> Decimal:
        book = self._portfolio
        return book.qty(symbol) if book is not None else Decimal(0)

    def _book(self, fill: Fill) -> None:
        if self._portfolio is None:
            self._waiting.append(fill)
        else:
            self._portfolio.apply(fill)
