"""Risk rules: the limits, the trading state and the pure checks (DESIGN.md §1, §3).

Every check is a plain function of values: it returns ``None`` when the order
passes the rule and a denied :class:`RiskDecision` otherwise. A denial names its
rule (``decision.rule``) and explains itself in words a person understands; the
reason always starts with the rule's name, e.g.
``"max_order_qty_stock: 150 shares exceeds the limit of 100"``. Reasons are
only formatted on the deny path, so an approval costs a few comparisons.

``trademk.engine.risk_engine.RiskEngine`` gathers the inputs (positions, open
orders, latest prices, the clock) and runs these checks in order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from trademk.domain.calendar import CalendarRangeError, NyseCalendar
from trademk.domain.market import NANOS_PER_SECOND, AssetClass
from trademk.domain.risk_limits import RISK_LIMIT_NAMES, RiskLimits, RiskLimitsError

__all__ = [
    "APPROVED",
    "NANOS_PER_DAY",
    "RISK_LIMIT_NAMES",
    "RiskDecision",
    "RiskLimits",
    "RiskLimitsError",
    "RiskRule",
    "TradingState",
    "check_daily_loss",
    "check_market_hours",
    "check_open_orders",
    "check_order_notional",
    "check_order_qty",
    "check_order_rate",
    "check_position_size",
    "check_price_band",
    "check_reduce_only",
    "deny_halted",
    "deny_no_market_price",
    "deny_unknown_symbol",
]

_HUNDRED: Final = Decimal(100)
NANOS_PER_DAY: Final = 86_400 * NANOS_PER_SECOND


class TradingState(enum.StrEnum):
    """What the risk engine lets through.

    ACTIVE: every order that passes the limits. REDUCING: only orders that
    shrink an existing position without flipping it. HALTED: nothing.
    """

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class RiskRule(enum.StrEnum):
    """The name of each rule; a denial carries one. Limit rules share the limit's name."""

    TRADING_HALTED = "trading_halted"
    REDUCE_ONLY = "reduce_only"
    UNKNOWN_SYMBOL = "unknown_symbol"
    MARKET_HOURS = "market_hours"
    MARKET_PRICE = "market_price"
    MAX_ORDER_QTY_CRYPTO = "max_order_qty_crypto"
    MAX_ORDER_QTY_STOCK = "max_order_qty_stock"
    MAX_ORDER_NOTIONAL = "max_order_notional_usd"
    MAX_POSITION_SIZE = "max_position_size_usd"
    MAX_OPEN_ORDERS = "max_open_orders"
    MAX_OPEN_ORDERS_PER_SYMBOL = "max_open_orders_per_symbol"
    MAX_DAILY_LOSS = "max_daily_loss_usd"
    MAX_ORDERS_PER_SECOND = "max_orders_per_second"
    MAX_ORDERS_PER_MINUTE = "max_orders_per_minute"
    MAX_PRICE_DEVIATION = "max_price_deviation_pct"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The answer to one order: approved, or denied by ``rule`` because of ``reason``.

    ``reason`` is empty for an approval; for a denial it starts with the
    rule's name (``"<rule>: <explanation>"``).
    """

    rule: RiskRule | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if (self.rule is None) != (self.reason == ""):
            raise ValueError("a denial needs both a rule and a reason; an approval has neither")

    @property
    def approved(self) -> bool:
        """True when the order may go to the venue."""
        return self.rule is None

    @classmethod
    def deny(cls, rule: RiskRule, explanation: str) -> RiskDecision:
        """A denial by ``rule``; the reason is ``"<rule>: <explanation>"``."""
        return cls(rule, f"{rule}: {explanation}")


APPROVED: Final = RiskDecision()
"""The one approval value (approvals carry nothing else)."""


# -- formatting (deny path only) -----------------------------------------------


def _qty(value: Decimal) -> str:
    """``value`` without an exponent or trailing zeros: ``150``, ``1.5``, ``100``."""
    return f"{value.normalize():f}"


def _usd(value: Decimal) -> str:
    return f"{value:,.2f} USD"


def _utc_minute(ts_ns: int) -> str:
    moment = datetime.fromtimestamp(ts_ns // NANOS_PER_SECOND, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _units(symbol: str, asset_class: AssetClass) -> str:
    return "shares" if asset_class is AssetClass.STOCK else symbol


# -- state and symbol ---------------------------------------------------------------


def deny_halted(state_reason: str) -> RiskDecision:
    """The denial every order gets while trading is halted."""
    return RiskDecision.deny(RiskRule.TRADING_HALTED, f"trading is halted ({state_reason})")


def deny_unknown_symbol(symbol: str) -> RiskDecision:
    """The denial of an order for a symbol that is not known and active."""
    return RiskDecision.deny(RiskRule.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")


def deny_no_market_price(symbol: str) -> RiskDecision:
    """The denial of an order that cannot be valued: never guess a price."""
    return RiskDecision.deny(
        RiskRule.MARKET_PRICE, f"no market price for {symbol}; cannot value the order"
    )


def check_reduce_only(
    symbol: str,
    position_qty: Decimal,
    pending_qty: Decimal,
    order_qty: Decimal,
    state_reason: str,
) -> RiskDecision | None:
    """Pass only if the order shrinks the position without flipping it.

    Quantities are signed (sells negative). ``pending_qty`` is what open orders
    on the order's side of ``symbol`` still work, so several reducing orders
    together cannot flip the position either.
    """
    after = pending_qty + order_qty
    opposes = (position_qty > 0 > order_qty) or (position_qty < 0 < order_qty)
    if opposes and abs(after) <= abs(position_qty):
        return None
    action = "buying" if order_qty > 0 else "selling"
    if not opposes:
        effect = "would not reduce"
    elif pending_qty:
        effect = f"with {_qty(abs(pending_qty))} already working would flip"
    else:
        effect = "would flip"
    return RiskDecision.deny(
        RiskRule.REDUCE_ONLY,
        f"trading is reduce-only ({state_reason}); {action} {_qty(abs(order_qty))} "
        f"{symbol} {effect} the position of {_qty(position_qty)}",
    )


def check_market_hours(
    symbol: str, asset_class: AssetClass, now_ns: int, calendar: NyseCalendar
) -> RiskDecision | None:
    """Stocks trade only in a regular NYSE session; crypto always passes.

    A time outside the calendar's range is denied (fail closed), since the
    answer cannot be known.
    """
    if asset_class is not AssetClass.STOCK:
        return None
    try:
        if calendar.is_open(now_ns):
            return None
        next_open = calendar.next_open(now_ns)
    except CalendarRangeError as err:
        return RiskDecision.deny(
            RiskRule.MARKET_HOURS, f"{symbol}: cannot tell whether NYSE is open ({err})"
        )
    return RiskDecision.deny(
        RiskRule.MARKET_HOURS,
        f"{symbol}: NYSE is closed (next open {_utc_minute(next_open)})",
    )


# -- order terms ----------------------------------------------------------------


def check_order_qty(
    symbol: str, qty: Decimal, asset_class: AssetClass, limits: RiskLimits
) -> RiskDecision | None:
    """The order's quantity is within the limit of its asset class."""
    limit = limits.max_order_qty(asset_class)
    if qty <= limit:
        return None
    rule = (
        RiskRule.MAX_ORDER_QTY_CRYPTO
        if asset_class is AssetClass.CRYPTO
        else RiskRule.MAX_ORDER_QTY_STOCK
    )
    return RiskDecision.deny(
        rule,
        f"{_qty(qty)} {_units(symbol, asset_class)} exceeds the limit of {_qty(limit)}",
    )


def check_price_band(
    symbol: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    last_price: Decimal,
    limits: RiskLimits,
) -> RiskDecision | None:
    """Limit and stop prices are within ``max_price_deviation_pct`` of the last price."""
    pct = limits.max_price_deviation_pct
    for name, price in (("limit price", limit_price), ("stop price", stop_price)):
        # |price - last| / last <= pct / 100, multiplied out to stay exact.
        if price is not None and abs(price - last_price) * _HUNDRED > pct * last_price:
            deviation = abs(price - last_price) * _HUNDRED / last_price
            return RiskDecision.deny(
                RiskRule.MAX_PRICE_DEVIATION,
                f"{symbol} {name} {_qty(price)} is {deviation:.2f}% away from the last "
                f"price {_qty(last_price)}; the limit is {_qty(pct)}%",
            )
    return None


def check_order_notional(
    symbol: str, qty: Decimal, price: Decimal, limits: RiskLimits
) -> RiskDecision | None:
    """``qty * price`` is within ``max_order_notional_usd``."""
    notional = qty * price
    if notional <= limits.max_order_notional_usd:
        return None
    return RiskDecision.deny(
        RiskRule.MAX_ORDER_NOTIONAL,
        f"order value {_usd(notional)} ({_qty(qty)} {symbol} at {_qty(price)}) exceeds "
        f"the limit of {_usd(limits.max_order_notional_usd)}",
    )


def check_position_size(
    symbol: str,
    position_qty: Decimal,
    pending_qty: Decimal,
    order_qty: Decimal,
    price: Decimal,
    limits: RiskLimits,
) -> RiskDecision | None:
    """The projected position stays within ``max_position_size_usd``.

    Signed quantities: the projection is the position, plus what open orders on
    the order's side still work (``pending_qty``), plus the order. An order that
    leaves the projected position smaller than it would be without the order
    always passes, so a position that grew past the limit can still be reduced.
    """
    before = position_qty + pending_qty
    after = before + order_qty
    if abs(after) <= abs(before):
        return None
    value = abs(after) * price
    if value <= limits.max_position_size_usd:
        return None
    return RiskDecision.deny(
        RiskRule.MAX_POSITION_SIZE,
        f"{symbol} position would reach {_qty(after)} worth {_usd(value)} at {_qty(price)}, "
        f"over the limit of {_usd(limits.max_position_size_usd)}",
    )


def check_open_orders(
    symbol: str, open_total: int, open_for_symbol: int, limits: RiskLimits
) -> RiskDecision | None:
    """Another order fits under the total and per-symbol open-order limits."""
    if open_total >= limits.max_open_orders:
        return RiskDecision.deny(
            RiskRule.MAX_OPEN_ORDERS,
            f"{open_total} orders are already open; the limit is {limits.max_open_orders}",
        )
    per_symbol = limits.max_open_orders_per_symbol
    if per_symbol is not None and open_for_symbol >= per_symbol:
        return RiskDecision.deny(
            RiskRule.MAX_OPEN_ORDERS_PER_SYMBOL,
            f"{open_for_symbol} {symbol} orders are already open; the limit is {per_symbol}",
        )
    return None


def check_daily_loss(
    day_start_equity: Decimal, equity: Decimal, day_start_ns: int, limits: RiskLimits
) -> RiskDecision | None:
    """The loss since the UTC day started (realized + unrealized, after fees) is within limit."""
    loss = day_start_equity - equity
    if loss <= limits.max_daily_loss_usd:
        return None
    return RiskDecision.deny(
        RiskRule.MAX_DAILY_LOSS,
        f"loss of {_usd(loss)} since {_utc_minute(day_start_ns)} exceeds the limit of "
        f"{_usd(limits.max_daily_loss_usd)}",
    )


def check_order_rate(
    rule: RiskRule, recent_orders: int, limit: int, window: str
) -> RiskDecision | None:
    """Fewer than ``limit`` orders went out in the last ``window`` (e.g. ``"minute"``)."""
    if recent_orders < limit:
        return None
    return RiskDecision.deny(
        rule,
        f"{recent_orders} orders were sent in the last {window}; the limit is {limit}",
    )
