"""Read side of market data for the API: latest prices, ticks, bars, feed status."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from trademk.domain.market import Bar, Tick
from trademk.domain.ports import TickStore
from trademk.engine.price_cache import LatestPriceCache, PriceSnapshot

StatusSource = Callable[[], dict[str, Any]]


class UnknownSymbolError(LookupError):
    """The symbol is not in the configured universe."""

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"unknown symbol {symbol!r}: see /api/v1/market-data/symbols for the universe"
        )
        self.symbol = symbol


class MarketDataService:
    """Answers market-data questions from the price cache and the tick store."""

    def __init__(
        self,
        store: TickStore,
        prices: LatestPriceCache,
        symbols: Iterable[str],
        status_sources: dict[str, StatusSource] | None = None,
    ) -> None:
        self.store = store
        self.prices = prices
        self._symbols = {symbol.upper() for symbol in symbols}
        self._status_sources = dict(status_sources or {})

    def add_status_source(self, name: str, source: StatusSource) -> None:
        self._status_sources[name] = source

    def known(self, symbol: str) -> str:
        """The canonical symbol, or UnknownSymbolError."""
        canonical = symbol.upper()
        if canonical not in self._symbols:
            raise UnknownSymbolError(symbol)
        return canonical

    async def latest(self, symbol: str) -> PriceSnapshot | Tick | None:
        """The in-memory snapshot when the symbol has ticked, else the newest stored tick."""
        canonical = self.known(symbol)
        snapshot = self.prices.get(canonical)
        if snapshot is not None:
            return snapshot
        return await self.store.latest(canonical)

    async def ticks(
        self,
        symbol: str,
        start: int | None,
        end: int | None,
        limit: int,
        exchange: str | None = None,
    ) -> list[Tick]:
        return await self.store.ticks(self.known(symbol), start, end, limit, exchange)

    async def bars(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[Bar]:
        return await self.store.bars(self.known(symbol), interval, start, end, limit)

    def stream_status(self) -> dict[str, dict[str, Any]]:
        return {name: source() for name, source in self._status_sources.items()}
