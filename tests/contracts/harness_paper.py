"""Contract-suite harness for the paper venue: a price cache fed directly, under a SimClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from trademk.domain.market import NANOS_PER_MILLI, Tick, TickKind
from trademk.engine.clock import SimClock, datetime_to_ns
from trademk.engine.price_cache import LatestPriceCache
from trademk.venues.paper import BpsFee, PaperVenue, SessionDayEnd

# Monday 2024-06-03 14:00 UTC: inside the NYSE session (13:30-20:00 UTC).
START_NS: Final = datetime_to_ns(datetime(2024, 6, 3, 14, 0, tzinfo=UTC))
STARTING_CASH: Final = Decimal("100000")
FEE_BPS: Final = Decimal("10")
# One rule (and its lazily built NYSE calendar) shared by every paper harness.
_DAY_END: Final = SessionDayEnd()


@dataclass
class PaperHarness:
    """A started ``PaperVenue`` whose market is whatever ``set_market`` pushes."""

    venue: PaperVenue
    prices: LatestPriceCache
    clock: SimClock
    crypto_symbol: str = "BTCUSDT"
    stock_symbol: str = "AAPL"
    unsupported_symbol: str = "ZZZZZZZZ"
    supports_partial_fills: bool = True
    event_timeout: float = 2.0
    exchange: str = field(default="TEST")

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
        """Push a quote (and a trade print at ``last``) through the price cache."""
        self.clock.advance(NANOS_PER_MILLI)
        self.prices.update(
            Tick(
                symbol=symbol,
                exchange=self.exchange,
                kind=TickKind.QUOTE,
                ts=self.clock.now_ns(),
                price=float((bid + ask) / 2),
                bid=float(bid),
                bid_size=float(bid_size),
                ask=float(ask),
                ask_size=float(ask_size),
            )
        )
        if last is not None:
            self.clock.advance(NANOS_PER_MILLI)
            self.prices.update(
                Tick(
                    symbol=symbol,
                    exchange=self.exchange,
                    kind=TickKind.TRADE,
                    ts=self.clock.now_ns(),
                    price=float(last),
                    qty=1.0,
                )
            )


@asynccontextmanager
async def paper_harness() -> AsyncIterator[PaperHarness]:
    """A fresh paper venue (100 000 USD, 10 bps fees, no slippage), started and closed."""
    clock = SimClock(START_NS)
    prices = LatestPriceCache()
    venue = PaperVenue(
        prices,
        clock,
        starting_cash=STARTING_CASH,
        fee_model=BpsFee(FEE_BPS),
        day_end=_DAY_END,
        expiry_poll_interval=None,
    )
    await venue.start()
    try:
        yield PaperHarness(venue=venue, prices=prices, clock=clock)
    finally:
        await venue.close()
