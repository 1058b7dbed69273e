"""The paper account's buying-power rule: margin 1x, shorting optional.

Gross exposure (the absolute market value of every position) may not exceed
equity. An order is accepted when the exposure it could add, plus its fee,
fits in the buying power left:

    buying_power = equity - gross_exposure - reserved

where ``reserved`` is what the other open orders already hold. With no short
positions this is exactly "a buy needs cash": ``equity - gross_exposure`` is
then the cash. A short sale needs equity for its notional. The part of an order
that closes an existing position adds no exposure and is always allowed (other
open orders on the same side, which may close it first, are taken into
account), so a position can always be closed.

The check runs once, at acceptance, at a reference price: the slipped taker
price for a market order, the limit price for limit and stop-limit orders, the
stop price for stop orders. A resting order keeps its reservation (shrinking
as it fills), so open orders cannot spend the same cash twice. Fills are not
re-checked: a stop that gaps past its stop price may use a little more than
it reserved.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from trademk.domain.orders import Order, OrderSide
from trademk.domain.portfolio import Portfolio

_ZERO: Final = Decimal(0)


def opening_qty(
    side: OrderSide, qty: Decimal, position_qty: Decimal, same_side_leaves: Decimal
) -> Decimal:
    """How much of an order opens or extends a position instead of closing one.

    ``position_qty`` is the signed position; ``same_side_leaves`` is what other
    open orders on the same side still have working (they close first).
    """
    closable = -position_qty if side is OrderSide.BUY else position_qty
    closable = max(_ZERO, closable - same_side_leaves)
    return max(_ZERO, qty - closable)


def available_buying_power(portfolio: Portfolio, reserved: Decimal) -> Decimal:
    """``equity - gross_exposure - reserved`` at the portfolio's current marks."""
    return portfolio.equity - portfolio.gross_exposure - reserved


def buying_power_rejection(
    order: Order,
    *,
    opening: Decimal,
    reference_price: Decimal,
    fee: Decimal,
    available: Decimal,
    allow_short: bool,
    currency: str,
) -> tuple[str | None, Decimal]:
    """``(reason, reservation)``: why ``order`` is refused (None if it is not) and
    how much buying power it holds once accepted."""
    if opening == 0:
        return None, _ZERO
    if order.side is OrderSide.SELL and not allow_short:
        return (
            f"short selling is disabled: selling {order.qty} {order.symbol} would open a "
            f"short position of {opening}",
            _ZERO,
        )
    required = opening * reference_price + fee
    if required > available:
        return (
            f"insufficient buying power: {order.side} {order.qty} {order.symbol} needs "
            f"{required:.2f} {currency}, available {max(available, _ZERO):.2f} {currency}",
            _ZERO,
        )
    return None, required
