"""The account as all execution workers trade it together, for processes without an OMS.

With several execution workers each one books its own fills; the API (and
anyone else who wants the whole account) rebuilds it from the fills every
worker journaled in the app database, then follows the ``fills`` topic of the
bus for new ones. It subscribes before it reads the database, so no fill falls
between the two; ``Portfolio.apply`` ignores a fill it booked already, so the
overlap counts once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal

import structlog

from trademk.domain.fills import Fill
from trademk.domain.portfolio import Portfolio
from trademk.engine.bus import MessageBus, Subscription
from trademk.engine.fill_relay import fill_of
from trademk.engine.price_cache import LatestPriceCache

log = structlog.get_logger(__name__)

FILLS_TOPIC = "fills"


class SharedBook:
    """Fills from the journal, then from the bus, booked into one portfolio.

    ``starting_cash`` may be unknown at first (a broker account reports it through
    the execution workers): fills wait until it is known, then the book is built.
    """

    def __init__(
        self,
        bus: MessageBus,
        stored_fills: Callable[[str], Awaitable[list[Fill]]],
        prices: LatestPriceCache,
        venue: str,
        starting_cash: Decimal | None,
    ) -> None:
        self.bus = bus
        self._stored_fills = stored_fills
        self.prices = prices
        self.venue = venue
        self._portfolio: Portfolio | None = None
        self._waiting: list[Fill] = []
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.malformed = 0
        if starting_cash is not None:
            self.know_starting_cash(starting_cash)

    async def start(self) -> None:
        if self._task is not None:
            return
        self._subscription = self.bus.subscribe(FILLS_TOPIC, capacity=100_000)
        watch = getattr(self.bus, "watch", None)
        if watch is not None:
            await watch(FILLS_TOPIC)
        for fill in await self._stored_fills(self.venue):
            self._book(fill)
        self._task = asyncio.create_task(self._follow(self._subscription), name="shared-book")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def know_starting_cash(self, cash: Decimal) -> None:
        """Build the book once the account's starting cash is known (later calls: no-op)."""
        if self._portfolio is not None:
            return
        self._portfolio = Portfolio(cash)
        for fill in self._waiting:
            self._portfolio.apply(fill)
        self._waiting = []

    @property
    def known(self) -> bool:
        return self._portfolio is not None

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
        if fill.venue != self.venue:
            return
        if self._portfolio is None:
            self._waiting.append(fill)
        else:
            self._portfolio.apply(fill)

    async def _follow(self, subscription: Subscription) -> None:
        async for _topic, payload in subscription:
            try:
                fill = fill_of(payload)
            except (KeyError, TypeError, ValueError, ArithmeticError) as err:
                self.malformed += 1
                log.warning("malformed fill on the bus", error=str(err))
                continue
            self._book(fill)
