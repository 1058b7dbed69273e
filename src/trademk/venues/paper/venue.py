"""PaperVenue: the built-in simulated broker, an ``ExecutionClient`` (name ``paper``).

It matches orders against the latest-price cache: on submission against the
current quote, later synchronously inside the cache's tick listener (the hot
path tick → fill → position, no I/O). Matching conventions are in
``trademk.venues.paper.matching``, the buying-power rule in
``trademk.venues.paper.buying_power`` and DAY expiry in
``trademk.venues.paper.sessions``.

Behaviour of the port:

- ``submit`` is idempotent by ``client_order_id``: a known id does nothing.
  The venue refuses an order with an ``OrderRejected`` event (never an
  exception): unsupported symbol, no market price for a market order, IOC/FOK
  on a stop order, insufficient buying power, short selling disabled. An
  order meant for another venue (``order.venue != name``) is a programming
  error and raises ``ValueError``.
- An accepted order emits ``OrderAccepted`` and then whatever happens to it:
  ``OrderFilled`` per fill, ``OrderCanceled`` (on request, IOC remainder, FOK
  not fillable), ``OrderExpired`` (DAY orders at the end of their day).
- ``cancel`` of an unknown id, or of an order that is no longer open (filled,
  canceled, expired, rejected), raises ``RejectedError``.
- ``submit_now`` is ``submit`` for a caller that applies the events itself
  (the OMS): it returns them, undelivered ones queued earlier first, instead
  of putting them on ``events()``; ``take_events`` hands over the undelivered
  ones alone.
- Time comes only from the injected clock, so the same venue serves backtests
  under a ``SimClock``. DAY expiry is checked on every tick, on every call, by
  ``expire_due()``, and (unless disabled) by a background poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from decimal import Decimal
from typing import Final

from trademk.domain.errors import RejectedError
from trademk.domain.fills import Fill
from trademk.domain.instruments import asset_class_of, require_non_negative, require_text
from trademk.domain.order_events import (
    OrderAccepted,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from trademk.domain.orders import Order, OrderType, TimeInForce
from trademk.domain.portfolio import Portfolio
from trademk.domain.venue_reports import AccountReport, OrderReport, PositionReport
from trademk.engine.clock import Clock
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.engine.price_cache import LatestPriceCache
from trademk.venues.paper.buying_power import (
    available_buying_power,
    buying_power_rejection,
    opening_qty,
)
from trademk.venues.paper.engine import MatchingEngine
from trademk.venues.paper.fees import NO_FEE, FeeModel
from trademk.venues.paper.ids import UuidIds
from trademk.venues.paper.matching import (
    MarketLiquidity,
    Slippage,
    TakerMatch,
    WorkingOrder,
    taker_match,
    to_price,
)
from trademk.venues.paper.sessions import DayEnd, SessionDayEnd

PAPER_VENUE: Final = "paper"
_ZERO: Final = Decimal(0)
_STOP_TYPES: Final = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
_IMMEDIATE_TIFS: Final = frozenset({TimeInForce.IOC, TimeInForce.FOK})


class PaperVenue:
    """A simulated venue with its own account; see the module docstring.

    ``prices`` is the latest-price cache the venue matches against (it adds a
    tick listener on ``start()``). ``fee_model`` charges each fill
    (``BpsFee``/``PerShareFee``); ``slippage_bps`` worsens taker prices;
    ``allow_short`` permits sales beyond the position (margin 1x, see
    ``buying_power``); ``day_end`` says when DAY orders expire (default:
    ``SessionDayEnd()``: 00:00 UTC for crypto, the NYSE close for stocks);
    ``tradable_symbols`` limits the symbols accepted (default: any stock or
    crypto symbol ``asset_class_of`` recognises); ``fill_on_trade_prints``
    lets trades through a resting limit fill it; ``id_factory`` makes venue
    order ids (uuid4 by default; pass a deterministic one for reproducible
    backtests); ``expiry_poll_interval`` is how often (seconds) a background
    task expires DAY orders when no tick arrives, None for no task.
    """

    def __init__(
        self,
        prices: LatestPriceCache,
        clock: Clock,
        *,
        starting_cash: Decimal = Decimal("100000"),
        slippage_bps: Decimal = _ZERO,
        fee_model: FeeModel = NO_FEE,
        base_currency: str = "USD",
        day_end: DayEnd | None = None,
        fill_on_trade_prints: bool = True,
        allow_short: bool = True,
        tradable_symbols: Collection[str] | None = None,
        name: str = PAPER_VENUE,
        id_factory: Callable[[], str] | None = None,
        expiry_poll_interval: float | None = 1.0,
    ) -> None:
        if expiry_poll_interval is not None and not expiry_poll_interval > 0:
            raise ValueError(
                f"expiry_poll_interval must be > 0 seconds or None, got {expiry_poll_interval}"
            )
        self.name = require_text("name", name)
        self.base_currency = require_text("base_currency", base_currency)
        self._prices = prices
        self._clock = clock
        self._portfolio = Portfolio(
            require_non_negative("starting_cash", starting_cash), base_currency
        )
        self._slippage = Slippage(slippage_bps)
        self._fee_model = fee_model
        self._allow_short = allow_short
        self._tradable = None if tradable_symbols is None else frozenset(tradable_symbols)
        self._new_id = id_factory if id_factory is not None else UuidIds()
        self._expiry_poll_interval = expiry_poll_interval
        self._orders: dict[str, WorkingOrder] = {}
        # Symbols ``asset_class_of`` accepted (it is a pure function of the name).
        self._classified: set[str] = set()
        # The float each symbol's positions were last marked at (marking again is a no-op).
        self._marked: dict[str, float] = {}
        self._queue: asyncio.Queue[OrderEvent | None] = asyncio.Queue()
        # While ``submit_now`` runs, events go to its caller instead of the queue.
        self._collected: list[OrderEvent] | None = None
        self._engine = MatchingEngine(
            prices,
            clock,
            self._portfolio,
            self._publish,
            venue_name=self.name,
            slippage=self._slippage,
            fee_model=fee_model,
            day_end=day_end if day_end is not None else SessionDayEnd(),
            fill_on_trade_prints=fill_on_trade_prints,
        )
        self._lifecycle = Lifecycle(name)
        self._expiry_task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Begin matching on ticks. Calling it again while running does nothing."""
        if self._lifecycle.state is ComponentState.RUNNING:
            return
        if self._lifecycle.state is ComponentState.STOPPED:
            raise RuntimeError(f"venue {self.name!r} was closed; create a new one")
        self._prices.add_listener(self._engine.on_tick)
        if self._expiry_poll_interval is not None:
            self._expiry_task = asyncio.create_task(
                self._poll_expiries(self._expiry_poll_interval), name=f"{self.name}-expiry"
            )
        self._lifecycle.to(ComponentState.RUNNING)

    async def close(self) -> None:
        """Stop matching and end every ``events()`` iterator after the queued events."""
        if self._lifecycle.state is ComponentState.STOPPED:
            return
        if self._lifecycle.state is ComponentState.RUNNING:
            self._prices.remove_listener(self._engine.on_tick)
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry_task
            self._expiry_task = None
        self._lifecycle.to(ComponentState.STOPPED)
        self._queue.put_nowait(None)

    def _require_running(self) -> None:
        if self._lifecycle.state is not ComponentState.RUNNING:
            raise RuntimeError(
                f"venue {self.name!r} is {self._lifecycle.state}; call start() first"
            )

    async def _poll_expiries(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.expire_due()

    # -- the port: orders -------------------------------------------------------

    async def submit(self, order: Order) -> None:
        """Accept (or reject) ``order`` and match it at once; a known id does nothing."""
        self._submit(order)

    def submit_now(self, order: Order) -> list[OrderEvent]:
        """``submit``, handing the events back instead of queueing them for ``events()``.

        Returns, in the order they happened, every event the venue had queued
        and not yet delivered, then those this submission produced; none of
        them comes out of ``events()``. The OMS uses it to apply the venue's
        answer without a trip through the event loop. If the submission raises,
        the events are queued for ``events()`` as ``submit`` would have left them.
        """
        self._require_running()
        events = self.take_events()
        self._collected = events
        try:
            self._submit(order)
        except BaseException:
            for event in events:
                self._queue.put_nowait(event)
            raise
        finally:
            self._collected = None
        return events

    def take_events(self) -> list[OrderEvent]:
        """Every event queued for ``events()`` and not yet delivered, in order; they no
        longer come out of ``events()``. A synchronous caller (the OMS on behalf of the
        backtest driver) uses it to apply fills of resting orders right after a tick."""
        queue = self._queue
        events: list[OrderEvent] = []
        closed = False
        while not queue.empty():
            queued = queue.get_nowait()
            if queued is None:
                closed = True
            else:
                events.append(queued)
        if closed:  # the end marker close() queued stays for the events() iterators
            queue.put_nowait(None)
        return events

    def _publish(self, event: OrderEvent) -> None:
        collected = self._collected
        if collected is None:
            self._queue.put_nowait(event)
        else:
            collected.append(event)

    def _submit(self, order: Order) -> None:
        self._require_running()
        if order.venue != self.name:
            raise ValueError(
                f"order {order.client_order_id!r} is for venue {order.venue!r}, not {self.name!r}"
            )
        if order.client_order_id in self._orders:
            return
        now = self._clock.now_ns()
        self._engine.expire_due(now)
        working = WorkingOrder(_venue_copy(order, now), self._new_id())
        # What the market offers now: the acceptance checks read it, matching takes from it.
        liquidity = MarketLiquidity.from_prices(self._prices.decimals(order.symbol))
        # A market order's taker match serves as its reference price and, nothing
        # having taken from the market in between, as its fill when placed.
        match = (
            taker_match(order.side, None, liquidity, self._slippage)
            if order.limit_price is None and order.stop_price is None
            else None
        )
        reason = self._rejection(working, liquidity, match)
        if reason is None and order.time_in_force is TimeInForce.DAY:
            # Before anything is recorded, so a calendar error leaves no trace.
            working.expires_ns = self._engine.day_end(order.symbol, now)
        self._orders[order.client_order_id] = working
        if reason is not None:
            self._engine.emit(working, OrderRejected(order.client_order_id, now, reason))
            return
        accepted = OrderAccepted(order.client_order_id, now, working.venue_order_id)
        self._engine.emit(working, accepted)
        self._engine.place(working, now, liquidity, match)

    async def cancel(self, client_order_id: str) -> None:
        """Cancel an open order (emits ``OrderCanceled``); ``RejectedError`` otherwise."""
        self._require_running()
        working = self._orders.get(client_order_id)
        if working is None:
            raise RejectedError(f"unknown order {client_order_id!r} at venue {self.name!r}")
        now = self._clock.now_ns()
        self._engine.expire_due(now)
        order = working.order
        if not order.is_open:
            raise RejectedError(
                f"order {client_order_id!r} is {order.status}; only open orders can be canceled"
            )
        self._engine.cancel(working, "canceled on request", now)

    def events(self) -> AsyncIterator[OrderEvent]:
        """Order events in the order they happened; ends after ``close()``.

        Meant for one consumer (the OMS): events are taken off a single queue.
        """
        return self._drain_events()

    async def _drain_events(self) -> AsyncIterator[OrderEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)  # end any other iterator as well
                return
            yield event

    # -- the port: reports ------------------------------------------------------

    async def order_reports(self, open_only: bool = True) -> list[OrderReport]:
        """Every order this venue knows (rejected ones included), or only open ones."""
        self.expire_due()
        return [
            _report(working)
            for working in self._orders.values()
            if not open_only or working.order.is_open
        ]

    async def order_report(self, client_order_id: str) -> OrderReport | None:
        """The venue's view of one order, or None if it never saw the id."""
        self.expire_due()
        working = self._orders.get(client_order_id)
        return None if working is None else _report(working)

    async def position_reports(self) -> list[PositionReport]:
        """Every non-flat position of the paper account."""
        return [
            PositionReport(symbol=p.symbol, qty=p.qty, avg_price=p.avg_price)
            for p in self._portfolio.open_positions()
        ]

    async def account(self) -> AccountReport:
        """Cash, equity at the latest prices, and the buying power left for new orders."""
        self.expire_due()
        self._mark_to_market()
        buying_power = available_buying_power(self._portfolio, self._engine.reserved())
        return AccountReport(
            cash=self._portfolio.cash,
            equity=self._portfolio.equity,
            buying_power=max(buying_power, _ZERO),
            currency=self.base_currency,
        )

    # -- extras -------------------------------------------------------------------

    @property
    def portfolio(self) -> Portfolio:
        """The paper account itself (cash, positions, P&L); read it, never apply to it."""
        return self._portfolio

    def book(self, fill: Fill) -> bool:
        """Book into this venue's account a fill the same account made through another
        paper venue (another execution worker's), so cash and positions, and with them
        buying power and short checks, are those of the whole account. False if it is
        another venue's or booked already."""
        self._require_running()
        return fill.venue == self.name and self._portfolio.apply(fill)

    def restore(self, fills: Iterable[Fill], open_orders: Iterable[Order] = ()) -> int:
        """Rebuild the paper venue from what the OMS journaled before a restart.

        The paper venue keeps its state in memory. After a restart the OMS hands
        it every stored fill (so cash and positions match the OMS) and the
        orders still open, which go back to work under their original venue
        order ids, with their fills so far, and match from the current prices.
        Returns how many fills were applied to the account.
        """
        self._require_running()
        fills = [fill for fill in fills if fill.venue == self.name]
        applied = sum(1 for fill in fills if self._portfolio.apply(fill))
        now = self._clock.now_ns()
        for order in open_orders:
            if order.venue != self.name or order.client_order_id in self._orders:
                continue
            working = WorkingOrder(_venue_copy(order, now), order.venue_order_id or self._new_id())
            accepted = OrderAccepted(order.client_order_id, now, working.venue_order_id)
            working.order.apply(accepted)
            for fill in fills:
                if fill.client_order_id == order.client_order_id:
                    working.order.apply(OrderFilled.of(fill))
                    working.next_trade_id()
            liquidity = MarketLiquidity.from_prices(self._prices.decimals(order.symbol))
            reference = self._reference_price(working.order, liquidity)
            if reference is not None:
                self._check_buying_power(working, reference)
            if order.time_in_force is TimeInForce.DAY:
                working.expires_ns = self._engine.day_end(order.symbol, order.created_ns)
            self._orders[order.client_order_id] = working
            self._engine.place(working, now)
        return applied

    def expire_due(self) -> int:
        """Expire every DAY order whose day ended by the clock's now; returns how many."""
        return self._engine.expire_due(self._clock.now_ns())

    # -- acceptance -------------------------------------------------------------

    def _rejection(
        self, working: WorkingOrder, liquidity: MarketLiquidity, match: TakerMatch | None
    ) -> str | None:
        order = working.order
        symbol = order.symbol
        if symbol not in self._classified:
            try:
                asset_class_of(symbol)
            except ValueError as err:
                return f"unsupported symbol {symbol!r}: {err}"
            self._classified.add(symbol)
        if self._tradable is not None and symbol not in self._tradable:
            return f"symbol {symbol!r} is not tradable at venue {self.name!r}"
        if order.type in _STOP_TYPES and order.time_in_force in _IMMEDIATE_TIFS:
            return f"time in force {order.time_in_force} is not supported for {order.type} orders"
        reference = match.price if match is not None else self._reference_price(order, liquidity)
        if reference is None:
            return f"no market price for {symbol}"
        return self._check_buying_power(working, reference)

    def _reference_price(self, order: Order, liquidity: MarketLiquidity) -> Decimal | None:
        if order.limit_price is not None:
            return order.limit_price
        if order.stop_price is not None:
            return order.stop_price
        match = taker_match(order.side, None, liquidity, self._slippage)
        return None if match is None else match.price

    def _check_buying_power(self, working: WorkingOrder, reference: Decimal) -> str | None:
        order = working.order
        position = self._portfolio.position(order.symbol, self.name)
        opening = opening_qty(
            order.side,
            order.qty,
            _ZERO if position is None else position.qty,
            self._engine.same_side_leaves(order.symbol, order.side),
        )
        if opening == 0:
            return None
        self._mark_to_market()
        reason, reservation = buying_power_rejection(
            order,
            opening=opening,
            reference_price=reference,
            fee=self._fee_model.fee(order.qty, reference),
            available=available_buying_power(self._portfolio, self._engine.reserved()),
            allow_short=self._allow_short,
            currency=self.base_currency,
        )
        working.reservation = reservation
        return reason

    def _mark_to_market(self) -> None:
        marked = self._marked
        for position in list(self._portfolio.open_positions()):
            symbol = position.symbol
            last = self._prices.last_price(symbol)
            if last is not None and last > 0 and marked.get(symbol) != last:
                # Portfolio.mark values every position of the symbol, flat ones
                # included, and later ones start from it: one mark per price is enough.
                self._portfolio.mark(symbol, to_price(last))
                marked[symbol] = last


def _venue_copy(order: Order, now: int) -> Order:
    """The venue's own copy of ``order`` (the caller's object is never touched), SUBMITTED."""
    copy = order.copy_terms()
    copy.apply(OrderSubmitted(order.client_order_id, now))
    return copy


def _report(working: WorkingOrder) -> OrderReport:
    order = working.order
    return OrderReport(
        client_order_id=order.client_order_id,
        venue_order_id=working.venue_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        time_in_force=order.time_in_force,
        qty=order.qty,
        filled_qty=order.filled_qty,
        avg_fill_price=order.avg_fill_price,
        status=order.status,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        ts_ns=order.updated_ns,
    )
