"""A strategy while the runner runs it: its legs, book, bar queue, and how orders settle."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from trademk.domain.fills import Fill
from trademk.domain.market import AssetClass, Bar
from trademk.domain.orders import Order, OrderStatus, OrderType
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import ns_to_datetime
from trademk.engine.strategy_book import StrategyBook
from trademk.engine.strategy_legs import (
    LegRouter,
    StrategyLeg,
    history_length,
    lot_size,
    strategy_order_id,
)
from trademk.engine.strategy_spec import StrategyResolver, StrategySpec, instantiate
from trademk.strategies.base import OrderIntent

__all__ = [
    "REMOTE_SETTLE_TIMEOUT",
    "BarEvent",
    "FailedEvent",
    "RunnerOptions",
    "RunningStrategy",
    "StrategyState",
    "order_payload_of",
    "settle",
]

_QUICK_ROUNDS: Final = 50
# INITIALIZED: queued for an execution worker in another process, not yet taken.
_AWAITING_VENUE: Final = frozenset(
    {OrderStatus.INITIALIZED, OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL}
)
REMOTE_SETTLE_TIMEOUT: Final = 30.0
"""``settle_timeout`` when the OMS is in another process: the order crosses the
signal stream to an execution worker (which may be busy or restarting) and its
answer comes back over the bus, on top of the venue's own time."""


class StrategyState(enum.StrEnum):
    """Whether a strategy runs; ``error`` means it raised and was stopped."""

    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """How the runner sizes and paces orders (tests shorten the timings).

    ``commission`` and ``slippage`` are the fractions of traded value the venue
    charges and moves the price by, so all-in entries fit the buying power.
    ``min_history``/``max_history`` bound each leg's rolling bar history;
    ``settle_timeout`` is how long a market order may take to fill before the
    strategy's next order is sent anyway (``REMOTE_SETTLE_TIMEOUT`` when the
    OMS runs in another process); ``settle_poll`` how often it is looked at
    once the first quick rounds passed; ``close_interval`` how often bars
    of quiet symbols are closed, ``bar_grace`` seconds after their end.
    """

    commission: float = 0.0
    slippage: float = 0.0
    min_history: int = 300
    max_history: int = 5000
    queue_capacity: int = 10_000
    settle_timeout: float = 5.0
    settle_poll: float = 0.01
    close_interval: float = 1.0
    bar_grace: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.commission < 0.1 or not 0 <= self.slippage < 0.1:
            raise ValueError("commission and slippage are fractions in [0, 0.1)")
        if not 2 <= self.min_history <= self.max_history:
            raise ValueError("need 2 <= min_history <= max_history")
        if self.queue_capacity <= 0 or self.settle_poll <= 0 or self.close_interval <= 0:
            raise ValueError("queue capacity, settle poll and close interval must be positive")
        if self.settle_timeout < 0 or self.bar_grace < 0:
            raise ValueError("settle timeout and bar grace must not be negative")


@dataclass(frozen=True, slots=True)
class BarEvent:
    """A closed bar for a strategy, with the receipt time of the tick that closed it (0: none)."""

    bar: Bar
    received_ns: int


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """Makes the strategy's task stop it with ``error`` (raised outside the task)."""

    error: Exception


class RunningStrategy:
    """One running strategy: a leg per symbol sharing one book, and a queue of bars."""

    def __init__(
        self, spec: StrategySpec, book: StrategyBook, legs: dict[str, StrategyLeg], capacity: int
    ) -> None:
        self.spec = spec
        self.book = book
        self.legs = legs
        self.queue: asyncio.Queue[BarEvent | FailedEvent] = asyncio.Queue(maxsize=capacity)
        self.task: asyncio.Task[None] | None = None
        self.state = StrategyState.RUNNING
        self.error: str | None = None
        self.bars = 0
        self.orders = 0
        self.dropped_bars = 0

    @classmethod
    def build(
        cls,
        spec: StrategySpec,
        options: RunnerOptions,
        resolve: StrategyResolver,
        asset_class_of: Callable[[str], AssetClass],
    ) -> RunningStrategy:
        """Instances, routers and the book for ``spec`` (``StrategyConfigError`` if bad)."""
        book = StrategyBook(spec.capital)
        legs: dict[str, StrategyLeg] = {}
        for symbol in spec.symbols:
            strategy = instantiate(spec, resolve)
            router = LegRouter(
                book.portfolio,
                symbol,
                legs=len(spec.symbols),
                commission=options.commission,
                slippage=options.slippage,
                lot=lot_size(asset_class_of(symbol)),
                strategy_id=spec.strategy_id,
            )
            capacity = history_length(
                strategy.param_values, options.min_history, options.max_history
            )
            legs[symbol] = StrategyLeg(strategy, router, symbol, spec.interval, capacity)
        return cls(spec, book, legs, options.queue_capacity)

    # -- bars -----------------------------------------------------------------
    def enqueue(self, event: BarEvent | FailedEvent) -> None:
        """Queue an event for the strategy's task; a full queue drops the bar and counts it."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped_bars += 1

    def drain(self) -> None:
        """Forget queued events (the strategy stopped)."""
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()

    # -- book -------------------------------------------------------------------
    def restore(self, fills: Iterable[Fill]) -> None:
        """Rebuild the book from the strategy's earlier fills."""
        for fill in sorted(fills, key=lambda f: f.ts_ns):
            self.book.apply(fill)
        self._sync()

    def apply_fill(self, fill: Fill) -> None:
        """Book a fill of one of the strategy's orders and tell the strategy."""
        if not self.book.apply(fill):
            return
        self._sync()
        leg = self.legs.get(fill.symbol)
        if leg is not None:
            leg.strategy.on_fill(fill)

    def _sync(self) -> None:
        for leg in self.legs.values():
            leg.router.sync()

    def positions(self) -> dict[str, Decimal]:
        """Signed quantity per symbol held by this strategy."""
        return {symbol: self.book.qty(symbol) for symbol in self.legs if self.book.qty(symbol)}

    # -- orders -------------------------------------------------------------------
    def request(
        self, leg: StrategyLeg, intent: OrderIntent, price: float, bar_ts: int, n: int
    ) -> OrderRequest | None:
        """The order request for ``intent`` with the market at ``price``; None if nothing
        is to be traded. Its id is deterministic: ``strategy_order_id(..., bar_ts, n)``."""
        self.book.mark(leg.symbol, Decimal(repr(float(price))))
        leg.router.set_last_price(price)
        request = leg.router.request_for(intent, price)
        if request is None:
            return None
        qty = leg.router.whole_lots(request.qty)
        if qty <= 0:
            return None
        cid = strategy_order_id(self.spec.strategy_id, leg.symbol, bar_ts, n)
        return dataclasses.replace(request, client_order_id=cid, qty=qty)


def _awaiting(order: Order) -> bool:
    if order.status in _AWAITING_VENUE:
        return True
    return order.type is OrderType.MARKET and order.is_open


async def settle(order: Order, options: RunnerOptions) -> bool:
    """Wait until the venue answered ``order`` (a market order: until it is done);
    False when ``options.settle_timeout`` passed first.

    In process the answer is usually there after a few loop turns, so the first
    rounds only yield; across processes it takes a round trip through Redis and
    the later rounds poll every ``options.settle_poll`` seconds.
    """
    rounds = _QUICK_ROUNDS + int(options.settle_timeout / options.settle_poll)
    for attempt in range(rounds):
        if not _awaiting(order):
            return True
        # The venue queues its answer; the OMS task applies it on its next turn.
        await asyncio.sleep(0 if attempt < _QUICK_ROUNDS else options.settle_poll)
    return not _awaiting(order)


def order_payload_of(order: Order, bar: Bar) -> dict[str, Any]:
    """The fields of an ``order`` event: the order and the bar it was decided on."""
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": str(order.side),
        "type": str(order.type),
        "qty": str(order.qty),
        "status": str(order.status),
        "reason": order.reason,
        "bar_ts": bar.ts,
        "bar_time": ns_to_datetime(bar.ts).isoformat(),
        "interval": bar.interval,
    }
