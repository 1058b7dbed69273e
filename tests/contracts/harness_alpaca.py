"""Contract-suite harness for the Alpaca venue: ``AlpacaVenue`` (alpaca-py) against the local fake.

Every harness gets its own fake server (a fresh, flat 100 000 USD cash
account), so orders never leak between tests. Symbols are ours (``BTCUSDT``);
the harness maps them to Alpaca's (``BTC/USD``) when it sets the fake's market.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

from tests.fakes.alpaca_trading import AlpacaTradingFake
from trademk.venues.alpaca.execution import AlpacaVenue
from trademk.venues.alpaca.symbols import to_alpaca_symbol

STARTING_CASH = Decimal("100000")


def fast_alpaca_venue(fake: AlpacaTradingFake, **options: object) -> AlpacaVenue:
    """An ``AlpacaVenue`` on ``fake`` with timeouts and backoffs sized for tests."""
    settings: dict[str, object] = {
        "request_timeout": 5.0,
        "max_attempts": 5,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "stream_ping_interval": 0.5,
        "stream_ping_timeout": 0.5,
        "stream_close_timeout": 0.2,
        "stream_backoff_initial": 0.05,
        "stream_backoff_max": 0.2,
        "start_timeout": 5.0,
        **options,
    }
    return AlpacaVenue(
        api_key=fake.api_key,
        secret_key=fake.secret_key,
        base_url=fake.base_url,
        **settings,
    )


@dataclass
class AlpacaHarness:
    """A started ``AlpacaVenue`` talking to its own ``AlpacaTradingFake``."""

    venue: AlpacaVenue
    fake: AlpacaTradingFake
    crypto_symbol: str = "BTCUSDT"
    stock_symbol: str = "AAPL"
    unsupported_symbol: str = "BNBUSDT"  # a Binance coin Alpaca does not list
    supports_partial_fills: bool = True
    event_timeout: float = 5.0

    async def set_market(
        self,
        symbol: str,
        *,
        bid: Decimal,
        ask: Decimal,
        last: Decimal | None = None,
        bid_size: Decimal = Decimal(1000),
        ask_size: Decimal = Decimal(1000),
    ) -> None:
        """Set the fake's quote; Alpaca's trading API has no last-trade input, so ``last`` is
        not used."""
        await self.fake.set_market(to_alpaca_symbol(symbol), bid, ask, bid_size, ask_size)


@asynccontextmanager
async def alpaca_harness() -> AsyncIterator[AlpacaHarness]:
    """A fresh fake Alpaca account and a started venue on it, both closed on exit."""
    async with AlpacaTradingFake(cash=STARTING_CASH) as fake:
        venue = fast_alpaca_venue(fake)
        await venue.start()
        try:
            yield AlpacaHarness(venue=venue, fake=fake)
        finally:
            await venue.close()
