"""The trading core for one process: venue, risk engine, OMS, journal, signal queue."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.config import Settings
from trademk.domain.calendar import NyseCalendar
from trademk.domain.market import AssetClass
from trademk.domain.portfolio import Portfolio
from trademk.domain.ports import ExecutionClient
from trademk.engine.bus import MessageBus
from trademk.engine.clock import Clock
from trademk.engine.journal_writer import JournalWriter
from trademk.engine.oms import OrderManager
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.risk_engine import RiskEngine
from trademk.engine.signal_queue import SignalQueue
from trademk.engine.trading import TradingCore
from trademk.messaging.redis_signals import RedisSignalQueue
from trademk.storage.risk_limits_repository import RiskLimitsRepository
from trademk.storage.trading_repository import TradingRepository


def asset_classes(settings: Settings) -> dict[str, AssetClass]:
    return {
        **{symbol: AssetClass.CRYPTO for symbol in settings.crypto_symbols},
        **{symbol: AssetClass.STOCK for symbol in settings.stock_symbols},
    }


def build_venue(
    settings: Settings, clock: Clock, prices: LatestPriceCache, calendar: NyseCalendar
) -> ExecutionClient:
    """The execution venue named by ``BROKER``."""
    if settings.broker == "paper":
        from trademk.venues.paper import BpsFee, PaperVenue, SessionDayEnd

        return PaperVenue(
            prices,
            clock,
            starting_cash=settings.paper_starting_cash,
            slippage_bps=settings.paper_slippage_bps,
            fee_model=BpsFee(settings.paper_fee_bps),
            tradable_symbols=settings.symbols,
            day_end=SessionDayEnd(calendar),
        )
    from trademk.venues.alpaca.execution import AlpacaVenue

    return AlpacaVenue.from_settings(settings, clock)


async def build_trading_core(
    settings: Settings,
    clock: Clock,
    sessions: async_sessionmaker[AsyncSession],
    prices: LatestPriceCache,
    calendar: NyseCalendar,
    signals: SignalQueue,
    bus: MessageBus,
    *,
    execute_signals: bool = True,
    price_wait: float = 0.0,
) -> TradingCore:
    """Assemble the trading core; risk limits come from the ``configs`` table."""
    classes: Mapping[str, AssetClass] = asset_classes(settings)
    venue = build_venue(settings, clock, prices, calendar)
    repository = TradingRepository(sessions)
    journal = JournalWriter(repository)
    await venue.start()
    cash = settings.paper_starting_cash
    if settings.broker != "paper":
        cash = (await venue.account()).cash
    portfolio = Portfolio(cash)
    holder: dict[str, OrderManager] = {}
    risk = RiskEngine(
        limits=await RiskLimitsRepository(sessions).load(),
        prices=prices,
        portfolio=portfolio,
        clock=clock,
        calendar=calendar,
        asset_classes=classes,
        open_orders=lambda: holder["oms"].open_orders(),
    )
    oms = OrderManager(
        venue,
        risk,
        portfolio,
        journal,
        clock,
        classes,
        events=bus,
        claim_orders=settings.redis_url is not None,
        # Still unsent half a claim period after its claim (a claimer sends within
        # milliseconds) when its signal comes back: the claimer died.
        takeover_after=(
            signals.claim_idle_ms / 2000 if isinstance(signals, RedisSignalQueue) else 5.0
        ),
    )
    holder["oms"] = oms
    return TradingCore(
        oms=oms,
        risk=risk,
        journal=journal,
        signals=signals,
        prices=prices,
        repository=repository,
        execute_signals=execute_signals,
        price_wait=price_wait,
    )
