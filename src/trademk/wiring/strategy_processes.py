"""The strategy runtime split over processes: the strategies worker and the API.

``trademk worker --role strategies`` runs every strategy (exactly one such
process): :func:`build_strategy_worker_service` puts its runner on a
``RemoteOrderGateway`` (orders onto the signal stream for the execution
workers, their answers back from the bus) and :func:`strategy_command_handlers`
answers the API on the control channel. ``trademk api`` stores definitions and
asks that worker: :func:`build_strategy_api_service`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.config import Settings
from trademk.domain.market import AssetClass
from trademk.engine.bus import MessageBus
from trademk.engine.clock import Clock
from trademk.engine.control import CommandHandler, CommandRefused, ControlClient
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.remote_orders import OpenOrderSource, RemoteOrderGateway
from trademk.engine.signal_queue import SignalQueue
from trademk.engine.strategy_runner import BarHistory, LatencyObserver, RunnerOptions
from trademk.engine.strategy_running import REMOTE_SETTLE_TIMEOUT
from trademk.engine.strategy_spec import StrategyConfigError
from trademk.storage.strategy_repository import StrategyRepository
from trademk.storage.trading_repository import TradingRepository
from trademk.wiring.strategies import StrategyService, local_strategy_service, runner_options
from trademk.wiring.strategy_hosts import (
    RemoteStrategyHost,
    StrategyAccount,
    StrategyConflict,
)

__all__ = [
    "build_strategy_api_service",
    "build_strategy_worker_service",
    "remote_runner_options",
    "strategy_command_handlers",
]


def remote_runner_options(settings: Settings) -> RunnerOptions:
    """``runner_options`` for a runner whose OMS is in another process: its orders
    settle after a round trip through Redis (``REMOTE_SETTLE_TIMEOUT``)."""
    return dataclasses.replace(runner_options(settings), settle_timeout=REMOTE_SETTLE_TIMEOUT)


def build_strategy_worker_service(
    settings: Settings,
    clock: Clock,
    sessions: async_sessionmaker[AsyncSession],
    prices: LatestPriceCache,
    known_symbol: Callable[[str], str],
    bus: MessageBus,
    signals: SignalQueue,
    asset_classes: Mapping[str, AssetClass],
    *,
    history: BarHistory | None = None,
    metrics: LatencyObserver | None = None,
    options: RunnerOptions | None = None,
    open_orders: OpenOrderSource | None = None,
) -> StrategyService:
    """The strategies worker: the runner sends its orders onto the signal stream for the
    execution workers and follows their ``orders``/``fills`` on the bus. ``start()``
    starts that gateway and the runner, seeds the defaults and resumes enabled paper
    strategies; serve ``strategy_command_handlers(service)`` beside it."""
    gateway = RemoteOrderGateway(
        signals,
        bus,
        clock,
        settings.broker,
        asset_classes,
        open_orders=open_orders or TradingRepository(sessions),
        stored_fills=TradingRepository(sessions),
    )
    return local_strategy_service(
        settings,
        clock,
        StrategyRepository(sessions),
        gateway,
        prices,
        known_symbol,
        bus,
        account=None,
        gateway=gateway,
        settled=None,
        history=history,
        metrics=metrics,
        options=options or remote_runner_options(settings),
    )


def build_strategy_api_service(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    known_symbol: Callable[[str], str],
    control: ControlClient,
    account: StrategyAccount,
) -> StrategyService:
    """The API process: definitions stored here, strategies run by the strategies worker
    (asked through ``control``), reports against ``account``. ``start()``/``stop()``
    do nothing: the worker resumes and seeds."""
    host = RemoteStrategyHost(control)
    return StrategyService(settings, StrategyRepository(sessions), host, account, known_symbol)


def strategy_command_handlers(service: StrategyService) -> dict[str, CommandHandler]:
    """The strategies worker's commands (role ``strategies``) for its ``ControlServer``:

    - ``strategy.start`` ``{strategy_id}``: load it from the app database and start it
      (recorded ``running``, or ``error``); refused ``not_found`` if it is not stored,
      ``invalid`` with the reason if it cannot run, ``conflict`` if its mode does not
      fit the broker;
    - ``strategy.stop`` ``{strategy_id, reason}``: stop it; ``{"stopped": bool}``;
    - ``strategy.running`` ``{strategy_id}``: ``{"running": bool}``.
    """
    if not service.runs_strategies:
        raise ValueError("only a service that runs its strategies here can serve commands")

    async def start(args: Mapping[str, Any]) -> Mapping[str, Any]:
        key = _strategy_key(args)
        try:
            found = await service.start_here(key)
        except StrategyConfigError as err:
            raise CommandRefused("invalid", str(err)) from None
        except StrategyConflict as err:
            raise CommandRefused("conflict", str(err)) from None
        if not found:
            raise CommandRefused("not_found", f"no strategy with id {key}")
        return {"running": True}

    async def stop(args: Mapping[str, Any]) -> Mapping[str, Any]:
        key = str(_strategy_key(args))
        reason = str(args.get("reason") or "stopped on request")
        return {"stopped": await service.stop_here(key, reason)}

    async def running(args: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"running": await service.host.is_running(str(_strategy_key(args)))}

    return {
        "strategy.start": start,
        "strategy.stop": stop,
        "strategy.running": running,
    }


def _strategy_key(args: Mapping[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(args.get("strategy_id")))
    except ValueError:
        raise CommandRefused("invalid", f"not a strategy id: {args.get('strategy_id')!r}") from None
