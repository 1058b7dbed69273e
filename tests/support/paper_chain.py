"""The paper trading chain for tests: risk → OMS → paper venue on one portfolio.

Built as ``wiring/trading.py`` builds it live, with the backtest's generous risk
limits, an in-memory journal unless one is given, and a simulated clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from trademk.backtest.event_support import BACKTEST_RISK_LIMITS, InMemoryJournal
from trademk.domain.calendar import NyseCalendar
from trademk.domain.market import AssetClass
from trademk.domain.portfolio import Portfolio
from trademk.engine.clock import SimClock
from trademk.engine.journal_writer import JournalWriter, TradingJournal
from trademk.engine.oms import EventSink, OrderManager
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.risk_engine import RiskEngine
from trademk.venues.paper import PaperVenue


@dataclass
class PaperChain:
    venue: PaperVenue
    portfolio: Portfolio
    writer: JournalWriter
    risk: RiskEngine
    oms: OrderManager

    async def start(self) -> None:
        await self.venue.start()
        self.writer.start()
        await self.oms.start()

    async def stop(self) -> None:
        await self.oms.stop()
        await self.venue.close()
        await self.writer.stop()


def paper_chain(
    clock: SimClock,
    prices: LatestPriceCache,
    asset_classes: Mapping[str, AssetClass],
    *,
    journal: TradingJournal | None = None,
    events: EventSink | None = None,
) -> PaperChain:
    """The chain on 100,000 of cash, not started."""
    venue = PaperVenue(prices, clock, expiry_poll_interval=None)
    portfolio = Portfolio(Decimal("100000"))
    writer = JournalWriter(journal or InMemoryJournal(), coalesce=0.0)
    made: list[OrderManager] = []
    risk = RiskEngine(
        limits=BACKTEST_RISK_LIMITS,
        prices=prices,
        portfolio=portfolio,
        clock=clock,
        calendar=NyseCalendar(date(2026, 1, 1)),
        asset_classes=asset_classes,
        open_orders=lambda: made[0].open_orders(),
    )
    oms = OrderManager(venue, risk, portfolio, writer, clock, asset_classes, events=events)
    made.append(oms)
    return PaperChain(venue, portfolio, writer, risk, oms)
