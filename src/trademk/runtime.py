"""Wiring: builds every component from Settings (constructor injection).

``Platform`` owns the long-lived resources of one process — the app database,
Redis, the tick store, feeds and pipelines — and starts and stops them in
order. Nothing else reaches for globals.

Its ``role`` says which part of the platform this process is:

- ``all`` (``trademk run``): everything in one process;
- ``api`` (``trademk api``): the API, WebSocket streams and alerts; trading
  through the execution workers (wiring/remote_desk.py), strategies through
  the strategies worker;
- ``execution`` (``trademk worker --role execution``): risk, OMS and venue,
  executing signals from the shared stream and answering the API's commands;
- ``strategies`` (``trademk worker --role strategies``): the strategy runner,
  sending its orders onto the shared signal stream.

Every role but ``all`` takes its prices from the ingest worker over Redis
(messaging/redis_ticks.py) instead of reading a venue feed itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from contextlib import AsyncExitStack
from typing import Any

import redis.asyncio as aioredis
import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trademk import __version__
from trademk.backtest.jobs import BacktestJobRunner
from trademk.config import Settings
from trademk.domain.calendar import NyseCalendar
from trademk.domain.portfolio import Portfolio
from trademk.engine.bus import InProcessBus, MessageBus
from trademk.engine.clock import Clock, LiveClock, utc_now
from trademk.engine.control import ControlClient, ControlServer, instance_name
from trademk.engine.signal_queue import InProcessSignalQueue, SignalQueue
from trademk.engine.trading import TradingCore
from trademk.messaging.redis_bus import RedisEventBus
from trademk.messaging.redis_lease import RedisLease
from trademk.messaging.redis_signals import RedisSignalQueue
from trademk.observability.health import HealthService
from trademk.observability.metrics import Metrics
from trademk.security.services import SecurityServices
from trademk.storage import database, migrate
from trademk.storage.kill_switch_repository import KillSwitchRepository
from trademk.storage.risk_limits_repository import RiskLimitsRepository
from trademk.storage.seed import seed_defaults
from trademk.storage.trading_repository import TradingRepository
from trademk.venues.reconnect import ExponentialBackoff
from trademk.wiring.live import PORTFOLIO_TOPIC, LiveServices
from trademk.wiring.market import MarketDataStack
from trademk.wiring.remote_desk import RemoteDesk
from trademk.wiring.shared_book import SharedBook
from trademk.wiring.strategies import StrategyService, build_strategy_service
from trademk.wiring.strategy_hosts import RemoteAccount
from trademk.wiring.strategy_processes import (
    build_strategy_api_service,
    build_strategy_worker_service,
    strategy_command_handlers,
)
from trademk.wiring.trading import asset_classes, build_trading_core
from trademk.wiring.trading_control import (
    ForeignFills,
    honour_stored_halt,
    trading_command_handlers,
    trading_status,
)
from trademk.wiring.trading_desk import LocalDesk, TradingDesk

ROLES = ("all", "api", "execution", "strategies")
# How long an execution worker waits for its first relayed price before taking signals.
EXECUTION_PRICE_WAIT_S = 10.0

log = structlog.get_logger(__name__)


class Platform:
    """All components of one Trademk process, built from settings."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        run_feed: bool = True,
        run_trading: bool = True,
        run_strategies: bool = True,
        role: str = "all",
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        if role != "all" and not settings.redis_url:
            raise ValueError(f"the {role} role runs beside other processes and needs REDIS_URL")
        self.role = role
        self.settings = settings
        self.clock = clock or LiveClock()
        self.engine: AsyncEngine = database.create_engine(settings.app_database_url)
        self.sessions: async_sessionmaker[AsyncSession] = database.session_factory(self.engine)
        self.redis: aioredis.Redis | None = (
            aioredis.from_url(
                settings.redis_url,
                socket_connect_timeout=2,
                socket_timeout=5,
                retry_on_timeout=True,
            )
            if settings.redis_url
            else None
        )
        self.security = SecurityServices(settings, self.clock, self.sessions, self.redis)
        self.health = HealthService(
            clock=self.clock, service=settings.app_name, version=__version__
        )
        self.health.add_check("database", self._check_database)
        if self.redis is not None:
            self.health.add_check("redis", self._check_redis)
        self.calendar = NyseCalendar(utc_now(self.clock).date())
        self.bus: MessageBus = InProcessBus()
        self.signals: SignalQueue = InProcessSignalQueue()
        self._redis_bus: RedisEventBus | None = None
        if self.redis is not None:
            # Orders, fills, positions, alerts, strategy events and commands cross
            # processes; ticks travel on the tick relay instead (messaging/redis_ticks.py)
            # and each process builds its own bars from them.
            namespace = settings.redis_namespace
            self._redis_bus = RedisEventBus(
                self.redis,
                InProcessBus(),
                prefix=f"{namespace}:events",
                # Each API process builds its own portfolio snapshots from the shared book.
                forward=lambda topic: ":" not in topic and topic != PORTFOLIO_TOPIC,
            )
            self.bus = self._redis_bus
            self.signals = RedisSignalQueue(self.redis, stream=f"{namespace}:signals")
        self.metrics = Metrics()
        self.market = MarketDataStack(
            settings,
            self.clock,
            self.calendar,
            run_feed=run_feed,
            metrics=self.metrics,
            relay_from=self.redis if role != "all" else None,
        )
        self.market_data = self.market.service
        self.backtests = BacktestJobRunner(
            settings.data_dir, self.clock, self.market.store, known_symbol=self.market_data.known
        )
        self.ingest = self.market.pipeline
        self.risk_limits = RiskLimitsRepository(self.sessions)
        self.kill_switch = KillSwitchRepository(self.sessions)
        self.run_trading = run_trading and role in ("all", "execution")
        # Strategies run in exactly one process: a copy elsewhere would never see the
        # first one's fills and would trade on a different idea of its position.
        self.run_strategies = run_strategies and role in ("all", "strategies")
        self.trading: TradingCore | None = None
        self.desk: TradingDesk | None = None
        self.strategies: StrategyService | None = None
        self.control: ControlClient | None = None
        self.shared_book: SharedBook | None = None
        self.metrics.watch_trading(lambda: self.trading)
        # API replicas all evaluate alerts; the holder of this lease alone fires them.
        self.alerts_lease: RedisLease | None = None
        if role == "api" and self.redis is not None:
            self.alerts_lease = RedisLease(
                self.redis, f"{settings.redis_namespace}:leases:alerts", instance_name("api")
            )
        self.live = LiveServices(
            self.clock,
            self.bus,
            self.market.prices,
            self.sessions,
            self._book,
            alerts_leader=self._fires_alerts,
        )
        self.health.add_check("tickstore", self.market.check_store)
        if self.market.pump is not None:
            self.health.add_component("feed", self.market.pump.status)
        if self.ingest is not None:
            self.health.add_component("ingest", self.ingest.status)
        self._stack = AsyncExitStack()
        self.database_ready = asyncio.Event()
        self._database_retry: asyncio.Task[None] | None = None
        self.started = False

    def _fires_alerts(self) -> bool:
        return self.alerts_lease is None or self.alerts_lease.held

    def _book(self) -> Portfolio | None:
        """The account marked at the latest prices, for the portfolio stream."""
        if self.trading is not None:
            return self.trading.marked_portfolio()
        if self.shared_book is not None:
            return self.shared_book.portfolio()
        return None

    def _workers_status(self) -> dict[str, Any]:
        """The API's view of the workers: degraded while no execution worker reports."""
        assert self.control is not None
        execution = [w.instance for w in self.control.workers("execution")]
        return {
            "state": "running" if execution else "degraded",
            "reason": "" if execution else "no execution worker has reported recently",
            "execution": execution,
            "strategies": [w.instance for w in self.control.workers("strategies")],
        }

    @property
    def serves_api(self) -> bool:
        return self.role in ("all", "api")

    async def _check_database(self) -> dict[str, Any]:
        await database.ping(self.engine)
        return {"backend": self.engine.dialect.name}

    async def _check_redis(self) -> dict[str, Any]:
        assert self.redis is not None
        await self.redis.ping()
        return {}

    async def prepare_database(self) -> None:
        """Migrate to head and seed defaults; safe to run on every start."""
        await migrate.upgrade(self.engine)
        added = await seed_defaults(
            self.sessions, self.settings.crypto_symbols, self.settings.stock_symbols
        )
        await self.security.ensure_first_admin()
        log.info("database ready", backend=self.engine.dialect.name, seeded=added)

    async def _prepare_until_ready(self) -> None:
        backoff = ExponentialBackoff(initial=1.0, maximum=30.0)
        while True:
            await asyncio.sleep(backoff.next_delay())
            try:
                await self.prepare_database()
            except (OSError, DBAPIError) as err:
                log.warning("database still unreachable", error=str(err))
            else:
                self.database_ready.set()
                await self._start_trading()
                return

    async def _start_market(self) -> None:
        """Market data needs no app database: it runs even while that is down."""
        if self._redis_bus is not None:
            await self._redis_bus.start()
            self._stack.push_async_callback(self._redis_bus.stop)
        await self.market.start()
        self._stack.push_async_callback(self.market.stop)

    async def _start_trading(self) -> None:
        """What needs the app database: live fan-out with alerts, then the trading core
        (which reconciles with the venue before it trades)."""
        if self.serves_api:
            # Alerts fire and WebSocket streams are served where the API is.
            if self.alerts_lease is not None:
                await self.alerts_lease.start()
                self._stack.push_async_callback(self.alerts_lease.stop)
            await self.live.start()
            self._stack.push_async_callback(self.live.stop)
        if self.role == "api":
            await self._start_remote_desk()
            return
        if self.role == "strategies":
            await self._start_strategy_worker()
            return
        if not self.run_trading:
            return
        trading = await build_trading_core(
            self.settings,
            self.clock,
            self.sessions,
            self.market.prices,
            self.calendar,
            self.signals,
            self.metrics.counting_bus(self.bus),
            # An execution worker's prices come over the tick relay, after it started.
            price_wait=EXECUTION_PRICE_WAIT_S if self.role == "execution" else 0.0,
        )
        self._stack.push_async_callback(trading.oms.venue.close)
        await trading.start(TradingRepository(self.sessions))
        self._stack.push_async_callback(trading.stop)
        await honour_stored_halt(trading, self.kill_switch)
        self.trading = trading
        self.desk = LocalDesk(trading, self.risk_limits, self.kill_switch)
        self.health.add_component("trading", trading.status)
        if self.role == "execution":
            await self._serve_execution_commands(trading)
        if self.run_strategies:
            await self._start_strategies(trading)

    async def _serve_execution_commands(self, trading: TradingCore) -> None:
        """An execution worker answers the API and books the other workers' fills."""
        foreign = ForeignFills(self.bus, trading, TradingRepository(self.sessions))
        await foreign.start()
        self._stack.push_async_callback(foreign.stop)
        server = ControlServer(
            self.bus,
            "execution",
            trading_command_handlers(trading, self.risk_limits),
            lambda: trading_status(trading),
        )
        await server.start()
        self._stack.push_async_callback(server.stop)

    async def _start_remote_desk(self) -> None:
        """The API process: trading through the execution workers, over Redis and the DB."""
        control = ControlClient(self.bus)
        await control.start()
        self._stack.push_async_callback(control.stop)
        venue = self.settings.broker
        repository = TradingRepository(self.sessions)
        book = SharedBook(
            repository,
            self.market.prices,
            venue,
            self.settings.paper_starting_cash if venue == "paper" else None,
        )
        await book.start()
        self._stack.push_async_callback(book.stop)
        self.control = control
        self.shared_book = book
        self.health.add_component("workers", self._workers_status)
        self.strategies = build_strategy_api_service(
            self.settings,
            self.sessions,
            self.market_data.known,
            control,
            RemoteAccount(self.market.prices, book.qty),
        )
        self.desk = RemoteDesk(
            venue=venue,
            clock=self.clock,
            asset_classes=asset_classes(self.settings),
            signals=self.signals,
            control=control,
            book=book,
            orders=repository,
            limits=self.risk_limits,
            kill_switch=self.kill_switch,
        )

    async def _start_strategies(self, trading: TradingCore) -> None:
        """The strategy runtime, after the trading core it sends orders through."""
        strategies = build_strategy_service(
            self.settings,
            self.clock,
            self.sessions,
            trading,
            self.market_data.known,
            self.bus,
            history=self.market.store,
            metrics=self.metrics,
        )
        self._stack.push_async_callback(strategies.stop)
        await strategies.start()
        self.strategies = strategies
        self.health.add_component("strategies", strategies.status)

    async def _start_strategy_worker(self) -> None:
        """The strategies worker: every strategy runs here; its orders go onto the signal
        stream for the execution workers, their answers come back on the bus."""
        strategies = build_strategy_worker_service(
            self.settings,
            self.clock,
            self.sessions,
            self.market.prices,
            self.market_data.known,
            self.bus,
            self.signals,
            asset_classes(self.settings),
            history=self.market.store,
            metrics=self.metrics,
        )
        self._stack.push_async_callback(strategies.stop)
        await strategies.start()
        server = ControlServer(
            self.bus, "strategies", strategy_command_handlers(strategies), strategies.status
        )
        await server.start()
        self._stack.push_async_callback(server.stop)
        self.strategies = strategies
        self.health.add_component("strategies", strategies.status)

    async def start(self) -> None:
        """Start every component.

        An unreachable database does not stop the process: it starts degraded
        (health answers 503 naming the database) and keeps retrying.
        """
        if self.started:
            return
        try:
            await self._start_market()
            if self.serves_api:
                await self.backtests.start()
                self._stack.push_async_callback(self.backtests.stop)
            try:
                await self.prepare_database()
            except (OSError, DBAPIError) as err:
                log.error("database unreachable at start; retrying in background", error=str(err))
                self._database_retry = asyncio.create_task(self._prepare_until_ready())
            else:
                self.database_ready.set()
                await self._start_trading()
        except BaseException:
            await self.stop()
            raise
        self.started = True
        # Everything built so far lives as long as the process: keep it out of the
        # collector's scans, which otherwise pause the trading path for tens of ms.
        gc.freeze()
        log.info(
            "platform started", role=self.role, feed=self.settings.feed, broker=self.settings.broker
        )

    async def stop(self) -> None:
        """Stop components in reverse order, then release connections."""
        if self._database_retry is not None:
            self._database_retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._database_retry
        await self._stack.aclose()
        self.trading = None
        self.desk = None
        self.strategies = None
        self.control = None
        self.shared_book = None
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
        if self.started:
            log.info("platform stopped")
        self.started = False
