"""The paper venue's matching engine: order books per symbol, fills, DAY expiry.

It works on orders the venue has already accepted. ``activate`` matches an
order the moment it becomes active (placed, or a stop triggered) and applies
its time in force; ``on_tick`` is the price-cache listener that fills resting
orders and triggers stops synchronously, with no I/O (the hot path tick → fill
→ position). Every event is applied to the venue's own copy of the order and,
for fills, to the account's portfolio, then published. Pricing conventions are
in ``trademk.venues.paper.matching``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from decimal import Decimal

from trademk.domain.fills import Fill, Liquidity
from trademk.domain.market import Tick, TickKind
from trademk.domain.order_events import OrderCanceled, OrderEvent, OrderExpired, OrderFilled
from trademk.domain.orders import Order, OrderSide, TimeInForce
from trademk.domain.portfolio import Portfolio
from trademk.engine.clock import Clock
from trademk.engine.price_cache import LatestPriceCache
from trademk.venues.paper.fees import FeeModel
from trademk.venues.paper.matching import (
    MarketLiquidity,
    Slippage,
    SymbolBook,
    TakerMatch,
    WorkingOrder,
    fill_qty,
    quote_crosses,
    stop_triggered,
    taker_match,
    to_price,
    to_size,
    trade_prints_through,
)
from trademk.venues.paper.sessions import DayEnd

Publish = Callable[[OrderEvent], None]


class MatchingEngine:
    """Books, matching and expiry of one paper venue; see the module docstring."""

    def __init__(
        self,
        prices: LatestPriceCache,
        clock: Clock,
        portfolio: Portfolio,
        publish: Publish,
        *,
        venue_name: str,
        slippage: Slippage,
        fee_model: FeeModel,
        day_end: DayEnd,
        fill_on_trade_prints: bool,
    ) -> None:
        self._prices = prices
        self._clock = clock
        self._portfolio = portfolio
        self._publish = publish
        self._venue_name = venue_name
        self._slippage = slippage
        self._fee_model = fee_model
        self._day_end = day_end
        self._fill_on_trade_prints = fill_on_trade_prints
        self._books: dict[str, SymbolBook] = {}
        self._expiries: list[tuple[int, int, WorkingOrder]] = []  # (expires_ns, seq, order)
        self._expiry_seq = 0

    def place(
        self,
        working: WorkingOrder,
        now: int,
        liquidity: MarketLiquidity | None = None,
        match: TakerMatch | None = None,
    ) -> None:
        """Put a just-accepted order to work: match it now, or hold a stop until it triggers.

        ``liquidity`` is the market at ``now`` if the caller already has it (it is
        taken from as the order fills), else it is read from the price cache.
        ``match`` is the order's taker match against that ``liquidity`` if the
        caller already computed it (a market order's acceptance check does).
        """
        order = working.order
        book = self.book(order.symbol)
        if not working.triggered:
            reference = self._prices.last_price(order.symbol)
            stop = order.stop_price
            assert stop is not None
            if reference is None or not stop_triggered(order.side, stop, to_price(reference)):
                book.stops.append(working)
                self.schedule_expiry(working)
                return
            working.triggered = True
        if liquidity is None:
            liquidity = MarketLiquidity.from_prices(self._prices.decimals(order.symbol))
            match = None
        self.activate(working, book, liquidity, now, match)

    def cancel(self, working: WorkingOrder, reason: str, now: int) -> None:
        """Take an open order off its book and emit ``OrderCanceled``."""
        self.book(working.order.symbol).remove(working)
        self.emit(working, OrderCanceled(working.order.client_order_id, now, reason))

    def same_side_leaves(self, symbol: str, side: OrderSide) -> Decimal:
        """Quantity still working on ``side`` across the open orders of ``symbol``."""
        book = self._books.get(symbol)
        return Decimal(0) if book is None else book.same_side_leaves(side)

    def reserved(self) -> Decimal:
        """Buying power held by every open order."""
        total = Decimal(0)
        for book in self._books.values():
            for working in book.resting:
                total += working.reserved
            for working in book.stops:
                total += working.reserved
        return total

    def book(self, symbol: str) -> SymbolBook:
        """The book of ``symbol``, created empty on first use."""
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = SymbolBook()
        return book

    def activate(
        self,
        working: WorkingOrder,
        book: SymbolBook,
        liquidity: MarketLiquidity,
        now: int,
        match: TakerMatch | None = None,
    ) -> None:
        """Match an order the moment it becomes active (placed, or stop triggered),
        then apply its time in force to what is left. ``match`` is its taker match
        against ``liquidity`` when the caller has it already."""
        order = working.order
        if match is None:
            match = taker_match(order.side, order.limit_price, liquidity, self._slippage)
        tif = order.time_in_force
        if tif is TimeInForce.FOK and (
            match is None or fill_qty(order.qty, match.size) < order.qty
        ):
            reason = f"FOK: {order.qty} {order.symbol} not fillable at once"
            self.emit(working, OrderCanceled(order.client_order_id, now, reason))
            return
        if match is not None:
            qty = fill_qty(order.leaves_qty, match.size)
            if qty > 0:
                self._fill(working, qty, match.price, "taker", now)
                liquidity.take(order.side, qty, match.from_quote)
        if not order.is_open:
            return
        if tif is TimeInForce.IOC:
            reason = f"IOC: {order.leaves_qty} {order.symbol} not fillable at once"
            self.emit(working, OrderCanceled(order.client_order_id, now, reason))
            return
        book.resting.append(working)
        self.schedule_expiry(working)

    def on_tick(self, tick: Tick) -> None:
        """The price-cache listener: expire, fill resting orders, trigger stops."""
        book = self._books.get(tick.symbol)
        if not (book or self._expiries):
            return
        now = self._clock.now_ns()
        if self._expiries and self._expiries[0][0] <= now:
            self.expire_due(now)
        if not book:
            return
        liquidity: MarketLiquidity | None = None
        if book.resting:
            if tick.kind is TickKind.QUOTE:
                liquidity = MarketLiquidity.from_prices(self._prices.decimals(tick.symbol))
                self._match_quote(book, liquidity, now)
            elif self._fill_on_trade_prints:
                self._match_trade(book, tick, now)
        if book.stops:
            self._trigger_stops(book, tick.symbol, liquidity, now)

    def _match_quote(self, book: SymbolBook, liquidity: MarketLiquidity, now: int) -> None:
        filled_any = False
        for working in book.resting:
            order = working.order
            offer = self._quote_offer(order, liquidity)
            if offer is None:
                continue
            price, size, role = offer
            qty = fill_qty(order.leaves_qty, size)
            if qty > 0:
                self._fill(working, qty, price, role, now)
                liquidity.take(order.side, qty, True)
                filled_any = True
        if filled_any:
            book.resting = [w for w in book.resting if w.order.is_open]

    def _quote_offer(
        self, order: Order, liquidity: MarketLiquidity
    ) -> tuple[Decimal, Decimal | None, Liquidity] | None:
        """(price, size, role) a new quote offers a resting order, or None."""
        limit = order.limit_price
        if limit is None:  # the remainder of a market order takes the new quote
            match = taker_match(order.side, None, liquidity, self._slippage)
            if match is None or not match.from_quote:
                return None
            return match.price, match.size, "taker"
        if quote_crosses(order.side, limit, liquidity):
            return limit, liquidity.quote_for(order.side)[1], "maker"
        return None

    def _match_trade(self, book: SymbolBook, tick: Tick, now: int) -> None:
        trade_price = to_price(tick.price)
        available = to_size(tick.qty)
        filled_any = False
        for working in book.resting:
            order = working.order
            limit = order.limit_price
            if limit is None or not trade_prints_through(order.side, limit, trade_price):
                continue
            qty = fill_qty(order.leaves_qty, available)
            if qty > 0:
                self._fill(working, qty, limit, "maker", now)
                filled_any = True
                if available is not None:
                    available -= qty
        if filled_any:
            book.resting = [w for w in book.resting if w.order.is_open]

    def _trigger_stops(
        self, book: SymbolBook, symbol: str, liquidity: MarketLiquidity | None, now: int
    ) -> None:
        last = self._prices.last_price(symbol)
        if last is None:
            return
        reference = to_price(last)
        triggered: list[WorkingOrder] = []
        waiting: list[WorkingOrder] = []
        for working in book.stops:
            stop = working.order.stop_price
            assert stop is not None
            if stop_triggered(working.order.side, stop, reference):
                triggered.append(working)
            else:
                waiting.append(working)
        if not triggered:
            return
        book.stops = waiting
        if liquidity is None:
            liquidity = MarketLiquidity.from_prices(self._prices.decimals(symbol))
        for working in triggered:
            working.triggered = True
            self.activate(working, book, liquidity, now)

    def _fill(
        self, working: WorkingOrder, qty: Decimal, price: Decimal, role: Liquidity, now: int
    ) -> None:
        order = working.order
        fill = Fill(
            client_order_id=order.client_order_id,
            venue_order_id=working.venue_order_id,
            trade_id=working.next_trade_id(),
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            fee=self._fee_model.fee(qty, price),
            ts_ns=now,
            venue=self._venue_name,
            strategy_id=order.strategy_id,
            liquidity=role,
        )
        event = OrderFilled(order.client_order_id, now, fill)
        order.apply(event)
        self._portfolio.apply(fill)
        self._publish(event)

    def emit(self, working: WorkingOrder, event: OrderEvent) -> None:
        """Apply ``event`` to the venue's copy of the order, then publish it."""
        working.order.apply(event)
        self._publish(event)

    # -- expiry -------------------------------------------------------------------

    def day_end(self, symbol: str, placed_ns: int) -> int:
        """When a DAY order for ``symbol`` placed at ``placed_ns`` expires."""
        expires = self._day_end(symbol, placed_ns)
        if expires <= placed_ns:
            raise ValueError(f"day_end returned {expires}, not after the order time {placed_ns}")
        return expires

    def schedule_expiry(self, working: WorkingOrder) -> None:
        """Start watching the expiry of an order that now rests (once per order)."""
        if working.expires_ns is None or working.expiry_scheduled:
            return
        working.expiry_scheduled = True
        self._expiry_seq += 1
        heapq.heappush(self._expiries, (working.expires_ns, self._expiry_seq, working))

    def expire_due(self, now: int) -> int:
        """Expire every open DAY order whose day ended by ``now``; returns how many."""
        expired = 0
        while self._expiries and self._expiries[0][0] <= now:
            _, _, working = heapq.heappop(self._expiries)
            if not working.order.is_open:
                continue
            self.book(working.order.symbol).remove(working)
            self.emit(working, OrderExpired(working.order.client_order_id, now))
            expired += 1
        return expired
