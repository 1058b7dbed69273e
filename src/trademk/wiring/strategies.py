"""The strategy runtime of one process: stored strategies, the live runner, the default set.

``StrategyService`` is what the API calls. It validates strategy definitions
(registered class, parameters within their ranges, symbols in the universe,
interval, sizing), keeps them in the app database, and starts and stops them
on a :class:`StrategyHost` (wiring/strategy_hosts.py):

- ``trademk run``: the :class:`StrategyRunner` of this process, on its OMS
  (:func:`build_strategy_service`);
- ``trademk worker --role strategies``: the runner of that worker, sending its
  orders to the execution workers; it answers the API's commands
  (wiring/strategy_processes.py);
- ``trademk api``: the strategies worker, asked over the control channel
  (wiring/strategy_processes.py). The API process runs no strategy: it
  stores definitions and asks; with no worker up, definitions are still stored
  (an enabled paper one starts when the worker starts) and an explicit start or
  stop fails with ``NoWorkerAnswered``.

Whoever runs the runner records what it did (``running``, ``error``,
``stopped``); the service that took a request records what was asked
(``enabled``): the app database is shared.

Safety rules:

- a ``paper`` strategy runs only on the built-in paper venue (``BROKER=paper``),
  a ``live`` one only on a real broker;
- at start-up of the process that runs them, enabled paper strategies resume
  on the paper venue; a ``live`` strategy is never started automatically —
  only ``POST .../start`` starts it, and it cannot be created or updated as
  enabled;
- the default strategies are created once, enabled, only with the paper broker
  and the sim feed (``DEFAULT_STRATEGIES=true``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.config import Settings
from trademk.domain.fills import Fill
from trademk.domain.instruments import asset_class_of
from trademk.engine.bus import MessageBus
from trademk.engine.clock import Clock
from trademk.engine.control import NoWorkerAnswered
from trademk.engine.market_data import UnknownSymbolError
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.remote_orders import RemoteOrderGateway
from trademk.engine.strategy_runner import (
    BarHistory,
    LatencyObserver,
    OrderGateway,
    RunnerOptions,
    StrategyRunner,
    StrategyState,
)
from trademk.engine.strategy_spec import (
    StrategyConfigError,
    StrategyMode,
    StrategySpec,
    check_spec,
    validated_params,
)
from trademk.engine.trading import TradingCore
from trademk.storage.strategy_models import StrategyRecord
from trademk.storage.strategy_repository import StrategyRepository, StrategyValues
from trademk.wiring.default_strategies import default_strategies, seeds_default_strategies
from trademk.wiring.strategy_hosts import (
    STRATEGIES_ROLE,
    LocalStrategyHost,
    StrategyAccount,
    StrategyConflict,
    StrategyHost,
    TradingAccount,
)
from trademk.wiring.strategy_reports import PerformanceReport, StrategyReports, SymbolExposure

__all__ = [
    "StrategyService",
    "build_strategy_service",
    "local_strategy_service",
    "runner_options",
]

log = structlog.get_logger(__name__)

_BPS: Final = Decimal(10_000)


def spec_of(record: StrategyRecord) -> StrategySpec:
    """The runner's view of a stored strategy."""
    return StrategySpec(
        strategy_id=str(record.id),
        name=record.name,
        strategy_class=record.strategy_class,
        symbols=tuple(record.symbols),
        interval=record.interval,
        capital=record.capital_allocation,
        params=dict(record.params),
        sizing=record.sizing,
        mode=StrategyMode(record.mode),
    )


class JournalFills:
    """A strategy's fills from the app database, after ``settled`` (the write-behind
    journal of this process flushed; nothing to wait for where no OMS runs)."""

    def __init__(
        self,
        repository: StrategyRepository,
        settled: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._repository = repository
        self._settled = settled

    async def strategy_fills(self, strategy_id: str) -> list[Fill]:
        if self._settled is not None:
            await self._settled()
        return await self._repository.strategy_fills(strategy_id)


class StrategyService:
    """Stored strategies and the host that runs them; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        repository: StrategyRepository,
        host: StrategyHost,
        account: StrategyAccount | None,
        known_symbol: Callable[[str], str],
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.host = host
        self.account = account
        self._known_symbol = known_symbol
        self._lock = asyncio.Lock()
        self._local = host if isinstance(host, LocalStrategyHost) else None
        self.runner: StrategyRunner | None = self._local.runner if self._local else None
        """The runner of this process; None where strategies run in the worker."""

    @property
    def runs_strategies(self) -> bool:
        """Whether the strategies run in this process (else in the strategies worker)."""
        return self._local is not None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Where strategies run here: start the runner, seed the default set once, and
        resume enabled paper strategies. Elsewhere (the API) nothing: the worker does."""
        if self._local is None:
            return
        await self._local.start()
        if seeds_default_strategies(self.settings):
            added = await self.repository.seed_once(default_strategies(self.settings))
            if added:
                log.info("default strategies created", count=added)
        async with self._lock:
            for record in await self.repository.find():
                await self._resume(record)

    async def stop(self) -> None:
        """Stop the runner; stored states stay so enabled paper strategies resume next start."""
        if self._local is not None:
            await self._local.stop()

    async def _resume(self, record: StrategyRecord) -> None:
        resumable = record.enabled and record.mode == StrategyMode.PAPER and self._paper_broker
        if resumable:
            await self._start(record)
            return
        if record.mode == StrategyMode.LIVE and record.enabled:
            log.warning(
                "live strategy not restarted: live strategies start only on request",
                strategy=record.name,
            )
            await self.repository.set_state(record.id, "stopped", enabled=False)
        elif record.state == StrategyState.RUNNING:
            await self.repository.set_state(record.id, "stopped")

    @property
    def _paper_broker(self) -> bool:
        return self.settings.broker == "paper"

    def status(self) -> dict[str, Any]:
        """Health and heartbeat view: the runner's state and counters and the running
        strategy ids; where the strategies worker runs them, only that (its heartbeat
        says the rest)."""
        if self._local is None:
            return {"state": "running", "runs_in": f"worker --role {STRATEGIES_ROLE}"}
        return self._local.status()

    # ------------------------------------------------------------------ validation
    def validate(self, values: StrategyValues) -> StrategyValues:
        """``values`` with complete parameters and canonical symbols, else
        ``StrategyConfigError`` naming the field and saying what is wrong."""
        params = validated_params(values.strategy_class, values.params)
        symbols = [self._symbol(symbol) for symbol in values.symbols]
        checked = dataclasses.replace(values, params=params, symbols=symbols)
        check_spec(
            StrategySpec(
                strategy_id="validation",
                name=checked.name,
                strategy_class=checked.strategy_class,
                symbols=tuple(symbols),
                interval=checked.interval,
                capital=checked.capital_allocation,
                params=params,
                sizing=checked.sizing,
                mode=StrategyMode(checked.mode),
            )
        )
        return checked

    def _symbol(self, symbol: str) -> str:
        try:
            canonical = self._known_symbol(symbol)
            asset_class_of(canonical)
        except (UnknownSymbolError, ValueError) as err:
            raise StrategyConfigError("symbols", str(err)) from None
        return canonical

    def _check_runnable(self, mode: str) -> None:
        broker = self.settings.broker
        if mode == StrategyMode.PAPER and broker != "paper":
            raise StrategyConflict(
                f"a paper strategy runs only on the paper venue (BROKER=paper); this platform "
                f"trades on {broker}: set the strategy's mode to live to trade there"
            )
        if mode == StrategyMode.LIVE and broker == "paper":
            raise StrategyConflict(
                "a live strategy needs a real broker (BROKER=alpaca); this platform runs the "
                "paper venue: set the strategy's mode to paper to run it here"
            )

    def _refuse_automatic_live(self, values: StrategyValues, running: bool) -> None:
        if values.mode == StrategyMode.LIVE and values.enabled and not running:
            raise StrategyConfigError(
                "enabled",
                "a live strategy is never enabled automatically: store it with enabled=false, "
                "then POST /api/v1/strategies/{id}/start",
            )

    # -------------------------------------------------------------------- commands
    async def create(self, values: StrategyValues) -> StrategyRecord:
        """Validate and store a strategy; an enabled paper strategy starts at once (or
        when the strategies worker starts, if none is up)."""
        checked = self.validate(values)
        self._refuse_automatic_live(checked, running=False)
        if checked.enabled:
            self._check_runnable(checked.mode)
        async with self._lock:
            record = await self.repository.create(checked)
            if checked.enabled:
                await self._start_when_possible(record)
        return await self._reload(record.id)

    async def replace(
        self, strategy_id: uuid.UUID, values: StrategyValues
    ) -> StrategyRecord | None:
        """Replace a strategy's definition; a running one restarts with it (or stops when
        ``enabled`` is false). None if there is no such strategy."""
        checked = self.validate(values)
        async with self._lock:
            current = await self.repository.get(strategy_id)
            if current is None:
                return None
            running = await self._running_if_known(str(strategy_id))
            self._refuse_automatic_live(checked, running)
            if checked.enabled:
                self._check_runnable(checked.mode)
            # Stored first: a taken name leaves the running strategy untouched.
            record = await self.repository.replace(strategy_id, checked)
            if running:
                await self.host.stop_strategy(str(strategy_id), "reconfigured")
            if record is not None and checked.enabled:
                await self._start_when_possible(record)
        return await self.repository.get(strategy_id)

    async def delete(self, strategy_id: uuid.UUID) -> bool:
        """Stop (if running) and delete a strategy; its orders and fills stay."""
        async with self._lock:
            try:
                await self.host.stop_strategy(str(strategy_id), "deleted")
            except NoWorkerAnswered:
                log.info("strategy deleted with no strategies worker up", strategy_id=strategy_id)
            return await self.repository.delete(strategy_id)

    async def start_strategy(self, record: StrategyRecord) -> StrategyRecord:
        """Start a stored strategy on request (the only way a live one ever starts).

        ``NoWorkerAnswered`` when the strategies run in a worker and none answers.
        """
        self._check_runnable(record.mode)
        async with self._lock:
            running = await self.host.is_running(str(record.id))
            failed = None if running else await self._start(record)
        if failed is not None:
            raise StrategyConflict(f"the strategy could not start: {failed}")
        return await self._reload(record.id)

    async def stop_strategy(self, record: StrategyRecord) -> StrategyRecord:
        """Stop a strategy and disable it (it does not resume at the next start).

        ``NoWorkerAnswered`` when the strategies run in a worker and none answers.
        """
        async with self._lock:
            stopped = await self.host.stop_strategy(str(record.id), "stopped on request")
            failed = not stopped and record.state == StrategyState.ERROR
            await self.repository.set_state(
                record.id,
                str(StrategyState.ERROR if failed else StrategyState.STOPPED),
                error=record.last_error if failed else None,
                enabled=False,
            )
        return await self._reload(record.id)

    async def start_here(self, strategy_id: uuid.UUID) -> bool:
        """The strategies worker's side of ``strategy.start``: start a stored strategy
        (recording ``running``, or ``error`` with the reason). False if it is not stored;
        ``StrategyConfigError`` if it could not start."""
        async with self._lock:
            record = await self.repository.get(strategy_id)
            if record is None:
                return False
            if await self.host.is_running(str(strategy_id)):
                return True
            self._check_runnable(record.mode)
            failed = await self._start(record)
        if failed is not None:
            raise StrategyConfigError("strategy", failed)
        return True

    async def stop_here(self, strategy_id: str, reason: str) -> bool:
        """The strategies worker's side of ``strategy.stop``: stop it if it runs here (the
        runner records ``stopped``)."""
        async with self._lock:
            return await self.host.stop_strategy(strategy_id, reason)

    async def _running_if_known(self, strategy_id: str) -> bool:
        """Whether it runs; not running when no strategies worker answers (it is stored
        only, and the worker starts it, if enabled, when it starts)."""
        try:
            return await self.host.is_running(strategy_id)
        except NoWorkerAnswered:
            return False

    async def _start_when_possible(self, record: StrategyRecord) -> None:
        try:
            await self._start(record)
        except NoWorkerAnswered:
            log.warning(
                "strategy stored; it starts when the strategies worker starts",
                strategy=record.name,
            )

    async def _start(self, record: StrategyRecord) -> str | None:
        """Run the strategy; the reason when it could not start.

        Where the runner is local its outcome is recorded here (``running``, or
        ``error`` and disabled); the strategies worker records its own.
        """
        try:
            await self.host.start_strategy(spec_of(record))
        except StrategyConfigError as err:
            if self._local is not None:
                await self.repository.set_state(record.id, "error", error=str(err), enabled=False)
            return str(err)
        if self._local is not None:
            await self.repository.set_state(record.id, "running", enabled=True)
        return None

    async def _reload(self, strategy_id: uuid.UUID) -> StrategyRecord:
        record = await self.repository.get(strategy_id)
        if record is None:
            raise LookupError(f"strategy {strategy_id} vanished")
        return record

    async def record_state(self, strategy_id: str, state: StrategyState, error: str | None) -> None:
        """The runner's state listener: persist what a strategy is doing."""
        key = uuid.UUID(strategy_id)
        if state is StrategyState.ERROR:
            await self.repository.set_state(key, str(state), error=error, enabled=False)
        else:
            await self.repository.set_state(key, str(state))

    # --------------------------------------------------------------------- reports
    async def performance(self, record: StrategyRecord) -> PerformanceReport:
        """P&L, trades, win rate and drawdown of a strategy from its stored fills."""
        return await self._reports().performance(record)

    async def exposure(self) -> list[SymbolExposure]:
        """Per symbol: what every strategy holds, their net position, and the account's."""
        return await self._reports().exposure()

    def _reports(self) -> StrategyReports:
        if self.account is None:
            raise RuntimeError("this process has no account view: it serves no reports")
        return StrategyReports(self.repository, self.account)


def runner_options(settings: Settings) -> RunnerOptions:
    """Sizing assumptions matching the venue: the paper venue's fee and slippage."""
    if settings.broker != "paper":
        return RunnerOptions()
    return RunnerOptions(
        commission=float(settings.paper_fee_bps / _BPS),
        slippage=float(settings.paper_slippage_bps / _BPS),
    )


def local_strategy_service(
    settings: Settings,
    clock: Clock,
    repository: StrategyRepository,
    orders: OrderGateway,
    prices: LatestPriceCache,
    known_symbol: Callable[[str], str],
    bus: MessageBus,
    *,
    account: StrategyAccount | None,
    gateway: RemoteOrderGateway | None,
    settled: Callable[[], Awaitable[None]] | None,
    history: BarHistory | None,
    metrics: LatencyObserver | None,
    options: RunnerOptions,
) -> StrategyService:
    """A service with its runner in this process; the runner records state through it."""
    holder: dict[str, StrategyService] = {}

    async def on_state(strategy_id: str, state: StrategyState, error: str | None) -> None:
        await holder["service"].record_state(strategy_id, state, error)

    runner = StrategyRunner(
        orders,
        prices,
        clock,
        bus,
        fills=JournalFills(repository, settled),
        history=history,
        on_state=on_state,
        metrics=metrics,
        options=options,
    )
    host = LocalStrategyHost(runner, gateway)
    service = StrategyService(settings, repository, host, account, known_symbol)
    holder["service"] = service
    return service


def build_strategy_service(
    settings: Settings,
    clock: Clock,
    sessions: async_sessionmaker[AsyncSession],
    trading: TradingCore,
    known_symbol: Callable[[str], str],
    bus: MessageBus,
    *,
    history: BarHistory | None = None,
    metrics: LatencyObserver | None = None,
    options: RunnerOptions | None = None,
) -> StrategyService:
    """One process (``trademk run``): the runner on this process's OMS, the bus and the
    tick store; reports against the trading core's account."""
    account = TradingAccount(trading)
    return local_strategy_service(
        settings,
        clock,
        StrategyRepository(sessions),
        trading.oms,
        trading.prices,
        known_symbol,
        bus,
        account=account,
        gateway=None,
        settled=account.settled,
        history=history,
        metrics=metrics,
        options=options or runner_options(settings),
    )
