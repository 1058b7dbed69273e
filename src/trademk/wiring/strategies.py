"""The strategy runtime of one process: stored strategies, the live runner, the default set.

``StrategyService`` is what the API calls. It validates strategy definitions
(registered class, parameters within their ranges, symbols in the universe,
interval, sizing), keeps them in the app database, and starts and stops them
on the :class:`StrategyRunner`.

Safety rules:

- a ``paper`` strategy runs only on the built-in paper venue (``BROKER=paper``),
  a ``live`` one only on a real broker;
- at start-up, enabled paper strategies resume on the paper venue; a ``live``
  strategy is never started automatically — only ``POST .../start`` starts it,
  and it cannot be created or updated as enabled;
- the default strategies are created once, enabled, only with the paper broker
  and the sim feed (``DEFAULT_STRATEGIES=true``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.config import Settings
from trademk.domain.fills import Fill
from trademk.domain.instruments import asset_class_of
from trademk.engine.bus import MessageBus
from trademk.engine.clock import Clock
from trademk.engine.market_data import UnknownSymbolError
from trademk.engine.strategy_book import BookPerformance, StrategyBook
from trademk.engine.strategy_runner import (
    BarHistory,
    LatencyObserver,
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

log = structlog.get_logger(__name__)

_BPS: Final = Decimal(10_000)
_DEFAULT_INTERVAL: Final = "5s"
DEFAULT_STRATEGY_SET: Final = (
    StrategyValues(
        name="sma-cross-btc",
        strategy_class="sma_cross",
        symbols=["BTCUSDT"],
        interval=_DEFAULT_INTERVAL,
        capital_allocation=Decimal("1000"),
        params={"fast": 3, "slow": 8},
        enabled=True,
    ),
    StrategyValues(
        name="sma-cross-eth",
        strategy_class="sma_cross",
        symbols=["ETHUSDT"],
        interval=_DEFAULT_INTERVAL,
        capital_allocation=Decimal("1000"),
        params={"fast": 3, "slow": 8},
        enabled=True,
    ),
    StrategyValues(
        name="momentum-bnb",
        strategy_class="momentum",
        symbols=["BNBUSDT"],
        interval=_DEFAULT_INTERVAL,
        capital_allocation=Decimal("300"),
        params={"lookback": 2},
        enabled=True,
    ),
)
"""Paper strategies on 5-second bars of the sim feed: short windows so that a new
user sees orders within a minute; small capitals that fit the default risk limits
and keep the fees of their frequent trades far from the daily loss limit."""


class StrategyConflict(RuntimeError):
    """The strategy cannot run on this platform as it is configured (mode versus broker)."""


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position of a strategy's book."""

    symbol: str
    qty: Decimal
    avg_price: Decimal
    last_price: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """A strategy's performance from its fills, marked at the latest prices."""

    record: StrategyRecord
    performance: BookPerformance
    orders: dict[str, int]
    positions: list[PositionView]


@dataclass(frozen=True, slots=True)
class StrategyHolding:
    """What one strategy holds in a symbol."""

    strategy_id: str
    name: str
    qty: Decimal
    exposure: Decimal


@dataclass(frozen=True, slots=True)
class SymbolExposure:
    """Net position and exposure of every strategy together in one symbol."""

    symbol: str
    net_qty: Decimal
    last_price: Decimal | None
    net_exposure: Decimal
    account_qty: Decimal
    strategies: list[StrategyHolding]


def default_strategies(settings: Settings) -> list[StrategyValues]:
    """The default set, limited to symbols of the configured crypto universe."""
    universe = set(settings.crypto_symbols)
    return [v for v in DEFAULT_STRATEGY_SET if set(v.symbols) <= universe]


def seeds_default_strategies(settings: Settings) -> bool:
    """Whether the default set is created: only with the paper broker and the sim feed."""
    return settings.default_strategies and settings.broker == "paper" and settings.feed == "sim"


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
    """A strategy's fills from the app database, after the write-behind journal flushed."""

    def __init__(self, trading: TradingCore, repository: StrategyRepository) -> None:
        self._trading = trading
        self._repository = repository

    async def strategy_fills(self, strategy_id: str) -> list[Fill]:
        await self._trading.journal.flush()
        return await self._repository.strategy_fills(strategy_id)


class StrategyService:
    """Stored strategies and the runner that runs them; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        repository: StrategyRepository,
        runner: StrategyRunner,
        trading: TradingCore,
        known_symbol: Callable[[str], str],
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.runner = runner
        self.trading = trading
        self._known_symbol = known_symbol
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the runner, seed the default set once, and resume enabled paper strategies."""
        await self.runner.start()
        if seeds_default_strategies(self.settings):
            added = await self.repository.seed_once(default_strategies(self.settings))
            if added:
                log.info("default strategies created", count=added)
        async with self._lock:
            for record in await self.repository.find():
                await self._resume(record)

    async def stop(self) -> None:
        """Stop the runner; stored states stay so enabled paper strategies resume next start."""
        await self.runner.stop()

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
        """Validate and store a strategy; an enabled paper strategy starts at once."""
        checked = self.validate(values)
        self._refuse_automatic_live(checked, running=False)
        if checked.enabled:
            self._check_runnable(checked.mode)
        async with self._lock:
            record = await self.repository.create(checked)
            if checked.enabled:
                await self._start(record)
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
            running = self.runner.is_running(str(strategy_id))
            self._refuse_automatic_live(checked, running)
            if checked.enabled:
                self._check_runnable(checked.mode)
            # Stored first: a taken name leaves the running strategy untouched.
            record = await self.repository.replace(strategy_id, checked)
            if running:
                await self.runner.stop_strategy(str(strategy_id), reason="reconfigured")
            if record is not None and checked.enabled:
                await self._start(record)
        return await self.repository.get(strategy_id)

    async def delete(self, strategy_id: uuid.UUID) -> bool:
        """Stop (if running) and delete a strategy; its orders and fills stay."""
        async with self._lock:
            await self.runner.stop_strategy(str(strategy_id), reason="deleted")
            return await self.repository.delete(strategy_id)

    async def start_strategy(self, record: StrategyRecord) -> StrategyRecord:
        """Start a stored strategy on request (the only way a live one ever starts)."""
        self._check_runnable(record.mode)
        async with self._lock:
            failed = None if self.runner.is_running(str(record.id)) else await self._start(record)
        if failed is not None:
            raise StrategyConflict(f"the strategy could not start: {failed}")
        return await self._reload(record.id)

    async def stop_strategy(self, record: StrategyRecord) -> StrategyRecord:
        """Stop a strategy and disable it (it does not resume at the next start)."""
        async with self._lock:
            stopped = await self.runner.stop_strategy(str(record.id), reason="stopped on request")
            failed = not stopped and record.state == StrategyState.ERROR
            await self.repository.set_state(
                record.id,
                str(StrategyState.ERROR if failed else StrategyState.STOPPED),
                error=record.last_error if failed else None,
                enabled=False,
            )
        return await self._reload(record.id)

    async def _start(self, record: StrategyRecord) -> str | None:
        """Run the strategy; the reason when it could not start (then recorded as ``error``)."""
        try:
            await self.runner.start_strategy(spec_of(record))
        except StrategyConfigError as err:
            await self.repository.set_state(record.id, "error", error=str(err), enabled=False)
            return str(err)
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
    def _marks(self) -> dict[str, Decimal]:
        marks = {}
        for symbol in self.trading.prices.symbols():
            price = self.trading.prices.last_price(symbol)
            if price is not None and price > 0:
                marks[symbol] = Decimal(repr(float(price)))
        return marks

    async def performance(self, record: StrategyRecord) -> PerformanceReport:
        """P&L, trades, win rate and drawdown of a strategy from its stored fills."""
        await self.trading.journal.flush()
        fills = await self.repository.strategy_fills(str(record.id))
        book = StrategyBook.from_fills(record.capital_allocation, fills)
        book.mark_all(self._marks())
        positions = [
            PositionView(
                symbol=p.symbol,
                qty=p.qty,
                avg_price=p.avg_price,
                last_price=p.last_price,
                market_value=p.market_value,
                unrealized_pnl=p.unrealized_pnl,
                realized_pnl=p.realized_pnl,
            )
            for p in sorted(book.portfolio.open_positions(), key=lambda p: (p.symbol, p.venue))
        ]
        orders = await self.repository.order_counts(str(record.id))
        return PerformanceReport(record, book.performance(), orders, positions)

    async def exposure(self) -> list[SymbolExposure]:
        """Per symbol: what every strategy holds, their net position, and the account's."""
        await self.trading.journal.flush()
        records = await self.repository.find()
        fills = await self.repository.fills_by_strategy([str(r.id) for r in records])
        marks = self._marks()
        holdings: dict[str, list[StrategyHolding]] = {}
        last_fill_price: dict[str, Decimal] = {}
        for record in records:
            book = StrategyBook.from_fills(record.capital_allocation, fills.get(str(record.id), []))
            for position in book.portfolio.open_positions():
                price = marks.get(position.symbol, position.last_price or Decimal(0))
                last_fill_price.setdefault(position.symbol, position.last_price or Decimal(0))
                holdings.setdefault(position.symbol, []).append(
                    StrategyHolding(str(record.id), record.name, position.qty, position.qty * price)
                )
        return [
            _symbol_exposure(symbol, held, marks.get(symbol, last_fill_price.get(symbol)), self)
            for symbol, held in sorted(holdings.items())
        ]

    def account_qty(self, symbol: str) -> Decimal:
        return self.trading.portfolio.qty(symbol)


def _symbol_exposure(
    symbol: str, held: list[StrategyHolding], price: Decimal | None, service: StrategyService
) -> SymbolExposure:
    net = sum((h.qty for h in held), Decimal(0))
    return SymbolExposure(
        symbol=symbol,
        net_qty=net,
        last_price=price,
        net_exposure=net * price if price is not None else Decimal(0),
        account_qty=service.account_qty(symbol),
        strategies=held,
    )


def runner_options(settings: Settings) -> RunnerOptions:
    """Sizing assumptions matching the venue: the paper venue's fee and slippage."""
    if settings.broker != "paper":
        return RunnerOptions()
    return RunnerOptions(
        commission=float(settings.paper_fee_bps / _BPS),
        slippage=float(settings.paper_slippage_bps / _BPS),
    )


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
    """The service and its runner, wired to the trading core, the bus and the tick store."""
    repository = StrategyRepository(sessions)
    holder: dict[str, Any] = {}

    async def on_state(strategy_id: str, state: StrategyState, error: str | None) -> None:
        await holder["service"].record_state(strategy_id, state, error)

    runner = StrategyRunner(
        trading.oms,
        trading.prices,
        clock,
        bus,
        fills=JournalFills(trading, repository),
        history=history,
        on_state=on_state,
        metrics=metrics,
        options=options or runner_options(settings),
    )
    service = StrategyService(settings, repository, runner, trading, known_symbol)
    holder["service"] = service
    return service
