"""Where strategies run and whose account they report against: the StrategyService's seams.

``StrategyService`` (wiring/strategies.py) keeps the stored definitions; it
starts and stops strategies through a :class:`StrategyHost` and reads marks
and the account's positions through a :class:`StrategyAccount`.

- In one process (``trademk run``) and in the strategies worker, the host is
  :class:`LocalStrategyHost` around the ``StrategyRunner``; in one process the
  account is :class:`TradingAccount` over the trading core.
- In the API process of a split deployment the host is
  :class:`RemoteStrategyHost`: it asks the strategies worker over the control
  channel (engine/control.py, role ``strategies``, commands ``strategy.start``,
  ``strategy.stop``, ``strategy.running`` with args ``strategy_id`` and
  ``reason``). The account is the API's view of the shared book
  (:class:`RemoteAccount` over its prices and quantities).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Final, Protocol

from trademk.engine.control import ControlClient, NoWorkerAnswered, Reply
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.remote_orders import RemoteOrderGateway
from trademk.engine.strategy_runner import StrategyRunner
from trademk.engine.strategy_spec import StrategyConfigError, StrategySpec
from trademk.engine.trading import TradingCore

__all__ = [
    "STRATEGIES_ROLE",
    "LocalStrategyHost",
    "RemoteAccount",
    "RemoteStrategyHost",
    "StrategyAccount",
    "StrategyConflict",
    "StrategyHost",
    "StrategyWorkerFailed",
    "TradingAccount",
]

STRATEGIES_ROLE: Final = "strategies"
START_COMMAND: Final = "strategy.start"
STOP_COMMAND: Final = "strategy.stop"
RUNNING_COMMAND: Final = "strategy.running"


class StrategyConflict(RuntimeError):
    """The strategy cannot run on this platform as it is configured (mode versus broker)."""


class StrategyWorkerFailed(RuntimeError):
    """The strategies worker took the command but failed on it (its error in the message)."""


class StrategyHost(Protocol):
    """Runs strategies: in this process, or in the strategies worker."""

    async def start_strategy(self, spec: StrategySpec) -> None:
        """Run ``spec`` (a running one is kept); ``StrategyConfigError`` if it cannot run."""
        ...

    async def stop_strategy(self, strategy_id: str, reason: str) -> bool:
        """Stop a running strategy; False if it was not running."""
        ...

    async def is_running(self, strategy_id: str) -> bool: ...


class StrategyAccount(Protocol):
    """The account the strategy reports are measured against."""

    @property
    def prices(self) -> LatestPriceCache:
        """The latest prices, to mark the strategies' positions."""
        ...

    async def settled(self) -> None:
        """Return once the fills known to this process are in the app database."""
        ...

    def qty(self, symbol: str) -> Decimal:
        """The account's signed position in ``symbol``."""
        ...


class LocalStrategyHost:
    """The runner of this process; with a remote order gateway in the strategies worker."""

    def __init__(self, runner: StrategyRunner, gateway: RemoteOrderGateway | None = None) -> None:
        self.runner = runner
        self.gateway = gateway

    async def start(self) -> None:
        """Follow the execution side's answers (if remote), then start the runner."""
        if self.gateway is not None:
            await self.gateway.start()
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()
        if self.gateway is not None:
            await self.gateway.stop()

    async def start_strategy(self, spec: StrategySpec) -> None:
        await self.runner.start_strategy(spec)

    async def stop_strategy(self, strategy_id: str, reason: str) -> bool:
        return await self.runner.stop_strategy(strategy_id, reason=reason)

    async def is_running(self, strategy_id: str) -> bool:
        return self.runner.is_running(strategy_id)

    def status(self) -> dict[str, Any]:
        """The runner's health and counters, the running strategy ids, and (if remote)
        the order gateway's counters."""
        status: dict[str, Any] = {
            **self.runner.status(),
            "running": sorted(r.spec.strategy_id for r in self.runner.running()),
        }
        if self.gateway is not None:
            status["orders"] = self.gateway.status()
        return status


class RemoteStrategyHost:
    """Asks the strategies worker; ``NoWorkerAnswered`` when none is running.

    A worker's heartbeat is awaited for ``find_worker`` seconds first, so a
    request with no worker up fails fast instead of waiting out the command
    timeout. Starting may take a while (the strategy's fills and stored bars
    are loaded), hence its own ``start_timeout``.
    """

    def __init__(
        self, control: ControlClient, *, start_timeout: float = 30.0, find_worker: float = 1.5
    ) -> None:
        self.control = control
        self.start_timeout = start_timeout
        self.find_worker = find_worker

    async def start_strategy(self, spec: StrategySpec) -> None:
        args = {"strategy_id": spec.strategy_id, "reason": "start"}
        await self._ask(START_COMMAND, args, within=self.start_timeout)

    async def stop_strategy(self, strategy_id: str, reason: str) -> bool:
        result = await self._ask(STOP_COMMAND, {"strategy_id": strategy_id, "reason": reason})
        return bool(result.get("stopped"))

    async def is_running(self, strategy_id: str) -> bool:
        result = await self._ask(RUNNING_COMMAND, {"strategy_id": strategy_id, "reason": ""})
        return bool(result.get("running"))

    async def _ask(
        self, command: str, args: Mapping[str, Any], within: float | None = None
    ) -> Mapping[str, Any]:
        if not await self.control.wait_for_workers(STRATEGIES_ROLE, self.find_worker):
            raise NoWorkerAnswered(
                f"no strategies worker is running: start `trademk worker --role "
                f"{STRATEGIES_ROLE}` (exactly one) to run strategies"
            )
        replies = await self.control.ask(STRATEGIES_ROLE, command, args, within=within)
        return _result_of(command, replies)


def _result_of(command: str, replies: list[Reply]) -> Mapping[str, Any]:
    """The first handled reply's result, or its refusal as the matching exception."""
    reply = next((r for r in replies if r.handled), None)
    if reply is None:
        raise NoWorkerAnswered(f"no strategies worker took {command!r}")
    if reply.ok:
        return reply.result
    message = reply.error or f"{command} refused"
    if reply.kind == "invalid":
        raise StrategyConfigError("strategy", message)
    if reply.kind == "conflict":
        raise StrategyConflict(message)
    raise StrategyWorkerFailed(f"the strategies worker {reply.instance} failed: {message}")


class TradingAccount:
    """The account of this process's trading core (``trademk run``)."""

    def __init__(self, trading: TradingCore) -> None:
        self._trading = trading

    @property
    def prices(self) -> LatestPriceCache:
        return self._trading.prices

    async def settled(self) -> None:
        await self._trading.journal.flush()

    def qty(self, symbol: str) -> Decimal:
        return self._trading.portfolio.qty(symbol)


class RemoteAccount:
    """An account kept elsewhere (the execution workers journal their own fills):
    this process's prices and a view of the account's positions, nothing to flush."""

    def __init__(
        self,
        prices: LatestPriceCache,
        qty: Callable[[str], Decimal],
        settled: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._prices = prices
        self._qty = qty
        self._settled = settled

    @property
    def prices(self) -> LatestPriceCache:
        return self._prices

    async def settled(self) -> None:
        if self._settled is not None:
            await self._settled()

    def qty(self, symbol: str) -> Decimal:
        return self._qty(symbol)
