"""The risk engine: the mandatory hop between a strategy's request and the venue.

``RiskEngine.check(order)`` decides synchronously from in-memory state (the
portfolio, the open orders, the latest-price cache, the injected clock and
the NYSE calendar): no I/O and no logging on the approve path. The rules
themselves are the pure functions of ``trademk.domain.risk``; this module
gathers their inputs, runs them in a fixed order and keeps the trading state
(ACTIVE / REDUCING / HALTED), the day's starting equity, the order-rate windows
and the denial counters.

Order of the checks: daily loss (a breach halts trading), trading state,
symbol, reduce-only, market hours, order quantity, market price, price band,
order notional, position size, open orders, order rate. The rate windows count
approved orders only: a denied order never reaches the venue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

import structlog

from trademk.domain.calendar import NyseCalendar
from trademk.domain.instruments import asset_class_of, require_text
from trademk.domain.market import NANOS_PER_SECOND, AssetClass
from trademk.domain.orders import Order, OrderSide, OrderType
from trademk.domain.risk import (
    APPROVED,
    NANOS_PER_DAY,
    RiskDecision,
    RiskLimits,
    RiskRule,
    TradingState,
    check_daily_loss,
    check_market_hours,
    check_open_orders,
    check_order_notional,
    check_order_qty,
    check_order_rate,
    check_position_size,
    check_price_band,
    check_reduce_only,
    deny_halted,
    deny_no_market_price,
    deny_unknown_symbol,
)
from trademk.engine.clock import Clock
from trademk.engine.price_cache import LatestPriceCache, PriceDecimals

__all__ = [
    "OpenOrdersSource",
    "PortfolioView",
    "RiskEngine",
    "RollingWindowCounter",
    "TradingStateChange",
    "WorkingOrder",
]

_log = structlog.get_logger(__name__)
_ZERO: Final = Decimal(0)
_NANOS_PER_MINUTE: Final = 60 * NANOS_PER_SECOND


class PortfolioView(Protocol):
    """What the engine reads from the portfolio (``trademk.domain.portfolio.Portfolio`` fits)."""

    def qty(self, symbol: str) -> Decimal:
        """Signed quantity held in ``symbol``."""
        ...

    @property
    def equity(self) -> Decimal:
        """Cash plus the market value of every position, in USD."""
        ...


class WorkingOrder(Protocol):
    """What the engine reads from an open order (``Order`` fits)."""

    @property
    def client_order_id(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def side(self) -> OrderSide: ...

    @property
    def leaves_qty(self) -> Decimal: ...


OpenOrdersSource = Callable[[], Iterable[WorkingOrder]]
"""Returns the orders currently open (working at the venue or on their way)."""


@dataclass(frozen=True, slots=True)
class TradingStateChange:
    """The trading state became ``state`` at ``ts_ns`` (UTC ns) because of ``reason``."""

    state: TradingState
    reason: str
    ts_ns: int


class RollingWindowCounter:
    """Counts events in the last ``window_ns``: at most ``limit`` are ever admitted.

    A rolling window rather than a token bucket: a bucket of size N refilled at
    N per window admits up to 2N orders within one window, which would break
    "at most N orders per rolling minute". Memory is bounded by ``limit``.
    """

    __slots__ = ("_stamps", "limit", "window_ns")

    def __init__(self, limit: int, window_ns: int) -> None:
        if limit < 1 or window_ns <= 0:
            raise ValueError(f"need limit >= 1 and window_ns > 0, got {limit}, {window_ns}")
        self.limit = limit
        self.window_ns = window_ns
        self._stamps: deque[int] = deque()

    def count(self, now_ns: int) -> int:
        """Events recorded in ``(now_ns - window_ns, now_ns]``."""
        stamps = self._stamps
        horizon = now_ns - self.window_ns
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        return len(stamps)

    def record(self, now_ns: int) -> None:
        """Remember one event at ``now_ns``."""
        self._stamps.append(now_ns)


class _OpenOrderTotals:
    """One pass over the open orders: counts and what still works on the order's side."""

    __slots__ = ("pending_qty", "symbol_count", "total")

    def __init__(self, orders: Iterable[WorkingOrder], order: Order) -> None:
        total = 0
        symbol_count = 0
        pending = _ZERO
        for working in orders:
            if working.client_order_id == order.client_order_id:
                continue
            total += 1
            if working.symbol == order.symbol:
                symbol_count += 1
                if working.side is order.side:
                    pending += working.leaves_qty
        self.total = total
        self.symbol_count = symbol_count
        self.pending_qty = pending if order.side is OrderSide.BUY else -pending


def _usable(price: Decimal | None) -> Decimal | None:
    """A cache price (already ``Decimal(repr(x))``), or None unless finite and > 0."""
    if price is None or not price.is_finite() or price <= 0:
        return None
    return price


class RiskEngine:
    """Approves or denies each order against the limits, the state and the market.

    ``asset_classes`` is the tradable universe (symbol -> asset class): a symbol
    outside it is denied as unknown. Pass ``None`` to trade any symbol whose
    class ``asset_class_of`` can tell from its name. ``on_state_change`` is
    called after every state change (halt, reduce-only, resume, daily-loss
    breach); an exception it raises is logged and does not change the decision.
    """

    def __init__(
        self,
        *,
        limits: RiskLimits,
        prices: LatestPriceCache,
        portfolio: PortfolioView,
        clock: Clock,
        calendar: NyseCalendar,
        asset_classes: Mapping[str, AssetClass] | None,
        open_orders: OpenOrdersSource,
        on_state_change: Callable[[TradingStateChange], None] | None = None,
        state_history_size: int = 100,
    ) -> None:
        self._prices = prices
        self._portfolio = portfolio
        self._clock = clock
        self._calendar = calendar
        self._open_orders = open_orders
        self._on_state_change = on_state_change
        self._classify_by_name = asset_classes is None
        self._asset_classes: dict[str, AssetClass] = dict(asset_classes or {})
        self._limits = limits
        self._per_second = RollingWindowCounter(limits.max_orders_per_second, NANOS_PER_SECOND)
        self._per_minute = RollingWindowCounter(limits.max_orders_per_minute, _NANOS_PER_MINUTE)
        self._day = -1
        self._day_start_equity = _ZERO
        start = TradingStateChange(TradingState.ACTIVE, "started", clock.now_ns())
        self._state_change = start
        self._history: deque[TradingStateChange] = deque([start], maxlen=state_history_size)
        self._denials: dict[str, int] = {str(rule): 0 for rule in RiskRule}
        self._approved = 0

    # -- the decision -------------------------------------------------------------

    def check(self, order: Order) -> RiskDecision:
        """Approve or deny ``order``; an approval counts toward the order-rate limits."""
        now_ns = self._clock.now_ns()
        tick = self._clock.monotonic_ns()
        decision = self._evaluate(order, now_ns, tick)
        if decision.rule is None:
            self._per_second.record(tick)
            self._per_minute.record(tick)
            self._approved += 1
        else:
            self._denials[decision.rule] += 1
        return decision

    def _evaluate(self, order: Order, now_ns: int, tick: int) -> RiskDecision:
        loss_denial = self._check_daily_loss(now_ns)
        if loss_denial is not None:
            return loss_denial
        if self._state_change.state is TradingState.HALTED:
            return deny_halted(self._state_change.reason)
        asset_class = self._asset_class(order.symbol)
        if asset_class is None:
            return deny_unknown_symbol(order.symbol)
        totals = _OpenOrderTotals(self._open_orders(), order)
        symbol = order.symbol
        position_qty = self._portfolio.qty(symbol)
        order_qty = order.signed_qty
        limits = self._limits
        denial = (
            self._check_state(symbol, position_qty, totals.pending_qty, order_qty)
            # Market hours only concern stocks (check_market_hours passes anything else).
            or (
                check_market_hours(symbol, asset_class, now_ns, self._calendar)
                if limits.enforce_market_hours and asset_class is AssetClass.STOCK
                else None
            )
            or check_order_qty(symbol, order.qty, asset_class, limits)
            or self._check_priced(order, position_qty, totals.pending_qty, order_qty)
            or check_open_orders(symbol, totals.total, totals.symbol_count, limits)
            or self._check_rate(tick)
        )
        return denial or APPROVED

    def _check_state(
        self, symbol: str, position_qty: Decimal, pending_qty: Decimal, order_qty: Decimal
    ) -> RiskDecision | None:
        change = self._state_change
        if change.state is not TradingState.REDUCING:
            return None
        return check_reduce_only(symbol, position_qty, pending_qty, order_qty, change.reason)

    def _check_priced(
        self, order: Order, position_qty: Decimal, pending_qty: Decimal, order_qty: Decimal
    ) -> RiskDecision | None:
        """The checks that need a market price: band, notional, position size."""
        decimals = self._prices.decimals(order.symbol)
        last = None if decimals is None else _usable(decimals.price)
        if decimals is None or last is None:
            return deny_no_market_price(order.symbol)
        price = self._valuation_price(order, decimals, last)
        limits = self._limits
        return (
            check_price_band(order.symbol, order.limit_price, order.stop_price, last, limits)
            or check_order_notional(order.symbol, order.qty, price, limits)
            or check_position_size(
                order.symbol, position_qty, pending_qty, order_qty, price, limits
            )
        )

    @staticmethod
    def _valuation_price(order: Order, decimals: PriceDecimals, last: Decimal) -> Decimal:
        """The price an order is valued at: its limit, else what it would pay at market.

        A market order is valued at the side of the book it takes (the ask for a
        buy, the bid for a sell) when a quote is known, else at the last price.
        A stop order is valued at its stop price or that market price, whichever
        is higher, because it may trigger and execute at either.
        """
        if order.limit_price is not None:
            return order.limit_price
        side_price = _usable(decimals.ask if order.side is OrderSide.BUY else decimals.bid)
        market = last if side_price is None else side_price
        if order.type is OrderType.STOP and order.stop_price is not None:
            return max(order.stop_price, market)
        return market

    def _check_rate(self, tick: int) -> RiskDecision | None:
        return check_order_rate(
            RiskRule.MAX_ORDERS_PER_SECOND,
            self._per_second.count(tick),
            self._per_second.limit,
            "second",
        ) or check_order_rate(
            RiskRule.MAX_ORDERS_PER_MINUTE,
            self._per_minute.count(tick),
            self._per_minute.limit,
            "minute",
        )

    def _asset_class(self, symbol: str) -> AssetClass | None:
        known = self._asset_classes.get(symbol)
        if known is not None or not self._classify_by_name:
            return known
        try:
            known = asset_class_of(symbol)
        except ValueError:
            return None
        self._asset_classes[symbol] = known
        return known

    # -- daily loss ---------------------------------------------------------------

    def _roll_day(self, now_ns: int) -> None:
        """Snapshot the starting equity at the first look of each UTC day."""
        day = now_ns // NANOS_PER_DAY
        if day != self._day:
            self._day = day
            self._day_start_equity = self._portfolio.equity

    def _check_daily_loss(self, now_ns: int) -> RiskDecision | None:
        """Deny, and halt, when an ACTIVE book lost more than the limit today.

        While REDUCING the breach does not halt: the operator chose to let the
        book shrink, and reduce-only orders only take risk off.
        """
        self._roll_day(now_ns)
        if self._state_change.state is not TradingState.ACTIVE:
            return None
        denial = check_daily_loss(
            self._day_start_equity,
            self._portfolio.equity,
            self._day * NANOS_PER_DAY,
            self._limits,
        )
        if denial is not None:
            self._change_state(TradingState.HALTED, denial.reason)
        return denial

    def daily_pnl(self) -> Decimal:
        """Equity change since the current UTC day started (negative is a loss)."""
        self._roll_day(self._clock.now_ns())
        return self._portfolio.equity - self._day_start_equity

    @property
    def day_start_equity(self) -> Decimal:
        """Equity snapshotted at the first check (or ``daily_pnl``) of the current UTC day."""
        return self._day_start_equity

    # -- trading state --------------------------------------------------------------

    @property
    def state(self) -> TradingState:
        """The current trading state."""
        return self._state_change.state

    @property
    def state_reason(self) -> str:
        """Why the engine is in its current state."""
        return self._state_change.reason

    @property
    def state_history(self) -> tuple[TradingStateChange, ...]:
        """The latest state changes, oldest first (the start counts as one)."""
        return tuple(self._history)

    def halt(self, reason: str) -> None:
        """Deny every order until ``resume`` or ``reduce_only``."""
        self._change_state(TradingState.HALTED, require_text("halt reason", reason))

    def reduce_only(self, reason: str) -> None:
        """Allow only orders that shrink a position without flipping it."""
        self._change_state(TradingState.REDUCING, require_text("reduce-only reason", reason))

    def resume(self, reason: str = "resumed by operator") -> None:
        """Back to ACTIVE. If today's loss is still over the limit, the next check halts again."""
        self._change_state(TradingState.ACTIVE, require_text("resume reason", reason))

    def _change_state(self, state: TradingState, reason: str) -> None:
        change = TradingStateChange(state, reason, self._clock.now_ns())
        self._state_change = change
        self._history.append(change)
        _log.warning("risk_trading_state_changed", state=str(state), reason=reason)
        if self._on_state_change is not None:
            try:
                self._on_state_change(change)
            except Exception:
                _log.exception("risk_state_listener_failed", state=str(state))

    # -- configuration and counters ------------------------------------------------

    @property
    def limits(self) -> RiskLimits:
        """The limits in force."""
        return self._limits

    def update_limits(self, limits: RiskLimits) -> None:
        """Enforce ``limits`` from the next check on; recent order history is kept."""
        self._limits = limits
        self._per_second.limit = limits.max_orders_per_second
        self._per_minute.limit = limits.max_orders_per_minute

    def set_universe(self, asset_classes: Mapping[str, AssetClass] | None) -> None:
        """Replace the tradable symbols (None: any symbol classifiable by name)."""
        self._classify_by_name = asset_classes is None
        self._asset_classes = dict(asset_classes or {})

    @property
    def denials_by_rule(self) -> dict[str, int]:
        """How many orders each rule denied (every rule present, zero included)."""
        return dict(self._denials)

    @property
    def approved_count(self) -> int:
        """How many orders were approved."""
        return self._approved
