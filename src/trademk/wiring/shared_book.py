"""The account as all execution workers trade it together, for the API process.

With several execution workers each one books its own fills. The API's book
is what they journaled in the app database, the record: every stored fill at
start, then those stored since, read every second and before each answer that
shows the account. It does not book fills from the bus: a fill published by a
worker that died before journaling it never happened for the account (its
order is taken over and filled again), and the book must not count it.
``Portfolio.apply`` ignores a fill it booked already, so overlaps count once.
"""

from __future__ import annotations

from decimal import Decimal

from trademk.domain.fills import Fill
from trademk.domain.portfolio import Portfolio
from trademk.engine.fill_relay import FillFollower, StoredFills
from trademk.engine.price_cache import LatestPriceCache


class SharedBook:
    """The whole account, for a process without an OMS (the API).

    ``starting_cash`` may be unknown at first (a broker account reports it through
    the execution workers): fills wait until it is known, then the book is built.
    """

    def __init__(
        self,
        stored: StoredFills,
        prices: LatestPriceCache,
        venue: str,
        starting_cash: Decimal | None,
        *,
        resync_interval: float = 1.0,
    ) -> None:
        self.prices = prices
        self.venue = venue
        self._portfolio: Portfolio | None = None
        self._waiting: list[Fill] = []
        self.follower = FillFollower(
            None, stored, venue, self._book, resync_interval=resync_interval
        )
        if starting_cash is not None:
            self.know_starting_cash(starting_cash)

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    async def catch_up(self) -> None:
        """Book what the workers journaled since the last read (before showing the account)."""
        await self.follower.catch_up()

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
