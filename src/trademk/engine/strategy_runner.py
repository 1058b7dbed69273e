"""The live strategy runtime: closed bars in, risk-checked orders out, fills back.

``StrategyRunner`` listens to every tick of the latest-price cache and builds
the bars of every interval a running strategy needs (:mod:`interval_bars`).
Each closed bar goes to the queue of each strategy running on that symbol and
interval; each strategy has its own task, so a slow or failing one never holds
up another. For each bar the strategy's leg runs the strategy as the backtest
does (:mod:`strategy_legs`), and every intent becomes an ``OrderRequest``
sized against the strategy's own book at the latest price, tagged with the
strategy's id and given a deterministic ``client_order_id``, and goes through
the ``OrderGateway`` one after the other, each waiting until the venue
answered so the next one sees the freed cash. In one process the gateway is
``OrderManager`` (the risk gate and the OMS); in the strategies worker of a
split deployment it is ``RemoteOrderGateway`` (engine/remote_orders.py), which
queues the request for the execution workers and follows their answers.

Fills of orders tagged with a running strategy's id go to its book, its
legs' routers and the strategy's ``on_fill``. A strategy that raises is
stopped with its error recorded (state ``error``); the runner goes on.

Events on the bus topic ``strategies``: ``{"type": "strategy", "kind":
"started" | "stopped" | "order" | "error", "strategy_id", "name", "ts",
...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

import structlog

from trademk.domain.fills import Fill
from trademk.domain.instruments import asset_class_of
from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick, TickKind
from trademk.domain.order_events import OrderFilled
from trademk.domain.orders import Order
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import Clock, ns_to_datetime
from trademk.engine.interval_bars import StrategyBars, interval_length
from trademk.engine.oms import EventSink
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.strategy_running import (
    BarEvent,
    FailedEvent,
    RunnerOptions,
    RunningStrategy,
    StrategyState,
    order_payload_of,
    settle,
)
from trademk.engine.strategy_spec import (
    StrategyConfigError,
    StrategyResolver,
    StrategySpec,
    check_spec,
)
from trademk.strategies.registry import get_strategy

__all__ = [
    "STRATEGIES_TOPIC",
    "BarHistory",
    "FillHistory",
    "LatencyObserver",
    "OrderGateway",
    "RunnerOptions",
    "StateListener",
    "StrategyRunner",
    "StrategyState",
]

log = structlog.get_logger(__name__)

STRATEGIES_TOPIC: Final = "strategies"


class OrderGateway(Protocol):
    """Where the runner sends its orders and hears of their fills.

    ``submit`` returns the order it made of the request (or the one already
    known by that ``client_order_id``); the runner then waits (``settle``) until
    its status shows the venue answered. ``OrderManager`` is one, in process;
    ``RemoteOrderGateway`` another, across processes.
    """

    async def submit(self, request: OrderRequest) -> Order: ...

    def on_fill(self, listener: Callable[[Order, OrderFilled], None]) -> None: ...


class FillHistory(Protocol):
    """Where a strategy's earlier fills come from when it (re)starts (the journal)."""

    async def strategy_fills(self, strategy_id: str) -> list[Fill]: ...


class BarHistory(Protocol):
    """Stored bars that warm a strategy up when it starts (the tick store)."""

    async def bars(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        exchange: str | None = None,
    ) -> list[Bar]: ...


StateListener = Callable[[str, StrategyState, str | None], Awaitable[None]]
"""Told ``(strategy_id, state, error)`` whenever a strategy starts, stops or fails."""


class LatencyObserver(Protocol):
    """Records tick-to-order latency (``trademk.observability.metrics.Metrics``)."""

    def observe_tick_to_order(self, seconds: float) -> None: ...


class StrategyRunner:
    """Runs strategies on live bars; see the module docstring."""

    def __init__(
        self,
        orders: OrderGateway,
        prices: LatestPriceCache,
        clock: Clock,
        events: EventSink,
        *,
        fills: FillHistory | None = None,
        history: BarHistory | None = None,
        on_state: StateListener | None = None,
        metrics: LatencyObserver | None = None,
        options: RunnerOptions | None = None,
        resolve: StrategyResolver = get_strategy,
    ) -> None:
        self.orders = orders
        self.prices = prices
        self.clock = clock
        self.events = events
        self.fills = fills
        self.history = history
        self.on_state = on_state
        self.metrics = metrics
        self.options = options or RunnerOptions()
        self.resolve = resolve
        self.bars = StrategyBars(grace_ns=int(self.options.bar_grace * NANOS_PER_SECOND))
        self._running: dict[str, RunningStrategy] = {}
        self._watchers: dict[tuple[str, str], set[str]] = {}
        self._closer: asyncio.Task[None] | None = None
        self._started = False
        self.counters = {"bars": 0, "orders": 0, "errors": 0}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen to ticks and fills, and close the bars of quiet symbols periodically."""
        if self._started:
            return
        self.prices.add_listener(self.on_tick)
        self.orders.on_fill(self._on_fill)
        self._closer = asyncio.create_task(self._close_quiet_bars(), name="strategy-bars")
        self._started = True

    async def stop(self) -> None:
        """Stop every strategy (its state stays as it was for the next start) and listening."""
        for strategy_id in list(self._running):
            await self._halt(strategy_id)
        if self._closer is not None:
            self._closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._closer
            self._closer = None
        if self._started:
            with contextlib.suppress(ValueError):
                self.prices.remove_listener(self.on_tick)
        self._started = False

    # ---------------------------------------------------------------- strategies
    def is_running(self, strategy_id: str) -> bool:
        return strategy_id in self._running

    def running(self) -> list[RunningStrategy]:
        """The running strategies."""
        return list(self._running.values())

    def get(self, strategy_id: str) -> RunningStrategy | None:
        return self._running.get(strategy_id)

    async def start_strategy(self, spec: StrategySpec) -> RunningStrategy:
        """Start ``spec`` (``StrategyConfigError`` if it cannot run); a running one is kept."""
        known = self._running.get(spec.strategy_id)
        if known is not None:
            return known
        check_spec(spec, self.resolve)
        running = RunningStrategy.build(spec, self.options, self.resolve, asset_class_of)
        try:
            if self.fills is not None:
                running.restore(await self.fills.strategy_fills(spec.strategy_id))
            await self._warm_up(running)
            for leg in running.legs.values():
                leg.strategy.on_start()
        except Exception as err:
            # Its book, stored bars or own code (on_start, indicators) failed: it never ran.
            raise StrategyConfigError(
                "strategy_class", f"{spec.name} failed to start: {type(err).__name__}: {err}"
            ) from err
        self.bars.use(spec.interval)
        self._running[spec.strategy_id] = running
        for symbol in spec.symbols:
            self._watchers.setdefault((symbol, spec.interval), set()).add(spec.strategy_id)
        running.task = asyncio.create_task(self._drive(running), name=f"strategy-{spec.name}")
        self._publish(running, "started", symbols=list(spec.symbols), interval=spec.interval)
        await self._notify(spec.strategy_id, StrategyState.RUNNING, None)
        log.info(
            "strategy started", strategy=spec.name, symbols=spec.symbols, interval=spec.interval
        )
        return running

    async def stop_strategy(self, strategy_id: str, reason: str = "stopped") -> bool:
        """Stop a running strategy (its ``on_stop`` runs); False if it was not running."""
        running = await self._halt(strategy_id)
        if running is None:
            return False
        for leg in running.legs.values():
            try:
                leg.strategy.on_stop()
            except Exception as err:
                log.warning("strategy on_stop failed", strategy=running.spec.name, error=str(err))
        running.state = StrategyState.STOPPED
        self._publish(running, "stopped", reason=reason)
        await self._notify(strategy_id, StrategyState.STOPPED, None)
        return True

    async def _halt(self, strategy_id: str) -> RunningStrategy | None:
        running = self._running.pop(strategy_id, None)
        if running is None:
            return None
        self._unwatch(running.spec)
        task = running.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running.drain()
        return running

    def _unwatch(self, spec: StrategySpec) -> None:
        for symbol in spec.symbols:
            watchers = self._watchers.get((symbol, spec.interval))
            if watchers is not None:
                watchers.discard(spec.strategy_id)
                if not watchers:
                    del self._watchers[(symbol, spec.interval)]

    async def _warm_up(self, running: RunningStrategy) -> None:
        """Preload each leg with the stored bars before now (best effort)."""
        if self.history is None:
            return
        spec = running.spec
        length = interval_length(spec.interval)
        now = self.clock.now_ns()
        end = now - now % length
        for symbol, leg in running.legs.items():
            capacity = leg.history.maxlen or 0
            try:
                stored = await self.history.bars(
                    symbol, spec.interval, start=end - capacity * length, end=end, limit=capacity
                )
            except Exception as err:
                log.warning("no bar history for a strategy", strategy=spec.name, error=str(err))
                continue
            leg.preload(stored)

    async def idle(self) -> None:
        """Return once every strategy has handled every bar queued so far."""
        for running in list(self._running.values()):
            await running.queue.join()

    # ---------------------------------------------------------------------- bars
    def on_tick(self, tick: Tick) -> None:
        """Price-cache listener: fold the trade into the bars; dispatch those that closed."""
        if tick.kind is not TickKind.TRADE:
            return
        closed = self.bars.on_tick(tick)
        if closed:
            self._dispatch(closed, tick.received)

    def on_bars(self, bars: Sequence[Bar]) -> None:
        """Dispatch bars closed elsewhere (e.g. by ``StrategyBars.close_due``)."""
        self._dispatch(bars, 0)

    def _dispatch(self, bars: Sequence[Bar], received_ns: int) -> None:
        for bar in bars:
            for strategy_id in self._watchers.get((bar.symbol, bar.interval), ()):
                running = self._running.get(strategy_id)
                if running is not None:
                    running.enqueue(BarEvent(bar, received_ns))

    async def _close_quiet_bars(self) -> None:
        while True:
            await asyncio.sleep(self.options.close_interval)
            self.on_bars(self.bars.close_due(self.clock.now_ns()))

    # -------------------------------------------------------------------- orders
    async def _drive(self, running: RunningStrategy) -> None:
        """The strategy's task: handle its bars one after the other until stopped or failed."""
        while True:
            event = await running.queue.get()
            try:
                if isinstance(event, FailedEvent):
                    raise event.error
                await self._handle(running, event)
            except Exception as err:
                await self._fail(running, err)
                return
            finally:
                running.queue.task_done()

    async def _handle(self, running: RunningStrategy, event: BarEvent) -> None:
        bar = event.bar
        leg = running.legs[bar.symbol]
        running.bars += 1
        self.counters["bars"] += 1
        intents = leg.decide(bar)
        for n, intent in enumerate(intents, start=1):
            price = self.prices.last_price(bar.symbol) or bar.close
            request = running.request(leg, intent, price, bar.ts, n)
            if request is None:
                continue
            self._observe_latency(event.received_ns)
            order = await self.orders.submit(request)
            running.orders += 1
            self.counters["orders"] += 1
            await settle(order, self.options)
            self._publish(running, "order", **order_payload_of(order, bar))

    def _observe_latency(self, received_ns: int) -> None:
        if self.metrics is None or received_ns <= 0:
            return
        latency = self.clock.now_ns() - received_ns
        if latency >= 0:
            self.metrics.observe_tick_to_order(latency / NANOS_PER_SECOND)

    def _on_fill(self, order: Order, event: OrderFilled) -> None:
        """Gateway fill listener: book fills of running strategies' orders."""
        strategy_id = order.strategy_id
        if strategy_id is None:
            return
        running = self._running.get(strategy_id)
        if running is None:
            return
        try:
            running.apply_fill(event.fill)
        except Exception as err:
            running.enqueue(FailedEvent(err))

    async def _fail(self, running: RunningStrategy, error: BaseException) -> None:
        spec = running.spec
        message = f"{type(error).__name__}: {error}"
        log.error("strategy failed and was stopped", strategy=spec.name, error=message)
        await self._halt(spec.strategy_id)
        running.state = StrategyState.ERROR
        running.error = message
        self.counters["errors"] += 1
        self._publish(running, "error", error=message)
        await self._notify(spec.strategy_id, StrategyState.ERROR, message)

    # -------------------------------------------------------------------- events
    def _publish(self, running: RunningStrategy, kind: str, **fields: Any) -> None:
        now = self.clock.now_ns()
        payload: dict[str, Any] = {
            "type": "strategy",
            "kind": kind,
            "strategy_id": running.spec.strategy_id,
            "name": running.spec.name,
            "ts": now,
            "time": ns_to_datetime(now).isoformat(),
            **fields,
        }
        self.events.publish(STRATEGIES_TOPIC, payload)

    async def _notify(self, strategy_id: str, state: StrategyState, error: str | None) -> None:
        if self.on_state is None:
            return
        try:
            await self.on_state(strategy_id, state, error)
        except Exception as err:
            log.warning("strategy state not recorded", strategy_id=strategy_id, error=str(err))

    # -------------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """Health view of the runtime."""
        return {
            "state": "running" if self._started else "stopped",
            "strategies": len(self._running),
            "intervals": self.bars.intervals,
            "dropped_bars": sum(r.dropped_bars for r in self._running.values()),
            **self.counters,
        }
