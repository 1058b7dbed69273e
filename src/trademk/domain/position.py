"""Positions: what we hold of one symbol at one venue, and its P&L.

Average-cost method. The position keeps its signed quantity and the exact cost
of the open quantity (the sum of ``qty * price`` of what opened it, reduced
pro rata as it is closed). ``avg_price`` is that cost divided by the open
quantity and is deliberately not rounded to a tick or a number of decimals:
rounding it would leak into realized P&L and break the cash/equity identity.
Keeping the cost rather than the average means a position closed in full
realizes exactly what was paid and received, with no division in between;
only partial closes divide (at the decimal context's precision, 28 significant
digits by default).

Realized P&L excludes fees; fees are accumulated separately and
``net_realized_pnl`` subtracts them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from trademk.domain.errors import InvariantViolation
from trademk.domain.fills import Fill
from trademk.domain.instruments import require_positive, require_text

_ZERO: Final = Decimal(0)


class Position:
    """The position in ``symbol`` at ``venue``; changed by ``apply(fill)`` and ``mark(price)``.

    ``qty`` is signed: positive long, negative short, zero flat.
    """

    __slots__ = (
        "_cost",
        "_fees_paid",
        "_last_price",
        "_qty",
        "_realized_pnl",
        "_updated_ns",
        "symbol",
        "venue",
    )

    def __init__(self, symbol: str, venue: str) -> None:
        self.symbol = require_text("symbol", symbol)
        self.venue = require_text("venue", venue)
        self._qty = _ZERO
        self._cost = _ZERO  # cost of the open quantity, always >= 0
        self._realized_pnl = _ZERO
        self._fees_paid = _ZERO
        self._last_price: Decimal | None = None
        self._updated_ns: int | None = None

    def __repr__(self) -> str:
        return (
            f"Position({self.symbol!r}@{self.venue!r}, qty={self._qty}, "
            f"avg_price={self.avg_price}, realized={self._realized_pnl})"
        )

    def apply(self, fill: Fill) -> Decimal:
        """Book ``fill``; returns the P&L it realized (zero when it only opens or adds).

        A fill on the side of the position (or on a flat position) adds to the
        cost. A fill against it closes up to the open quantity, realizing
        ``(exit - avg) * closed`` for a long and ``(avg - exit) * closed`` for a
        short; anything beyond the open quantity opens the other side at the
        fill price. If the position has never been marked, the fill price
        becomes its mark. Fills are not deduplicated here (``Portfolio`` does).
        """
        if fill.symbol != self.symbol or fill.venue != self.venue:
            raise InvariantViolation(
                f"fill {fill.trade_id!r} for {fill.symbol!r}@{fill.venue!r} applied to "
                f"position {self.symbol!r}@{self.venue!r}"
            )
        signed_qty = fill.signed_qty
        realized = _ZERO
        if self._qty == 0 or (self._qty > 0) == (signed_qty > 0):
            self._cost += fill.qty * fill.price
        else:
            realized = self._close(fill)
        self._qty += signed_qty
        self._fees_paid += fill.fee
        if self._last_price is None:
            self._last_price = fill.price
        self._updated_ns = fill.ts_ns
        return realized

    def _close(self, fill: Fill) -> Decimal:
        """Close against the open quantity; open the remainder (a flip) at the fill price."""
        open_qty = abs(self._qty)
        closed = min(fill.qty, open_qty)
        # A full close releases the whole cost exactly; only a partial one divides.
        released = self._cost if closed == open_qty else self._cost * closed / open_qty
        proceeds = closed * fill.price
        realized = proceeds - released if self._qty > 0 else released - proceeds
        self._realized_pnl += realized
        self._cost -= released
        remainder = fill.qty - closed
        if remainder > 0:
            self._cost = remainder * fill.price
        return realized

    def mark(self, price: Decimal) -> None:
        """Set the price the open quantity is valued at."""
        self._last_price = require_positive("mark price", price)

    # -- state ----------------------------------------------------------------

    @property
    def qty(self) -> Decimal:
        """Signed quantity: positive long, negative short."""
        return self._qty

    @property
    def avg_price(self) -> Decimal:
        """Average entry price of the open quantity (unrounded); zero when flat."""
        if self._qty == 0:
            return _ZERO
        return self._cost / abs(self._qty)

    @property
    def realized_pnl(self) -> Decimal:
        """P&L realized by closing, excluding fees."""
        return self._realized_pnl

    @property
    def fees_paid(self) -> Decimal:
        """Total fees of every fill booked."""
        return self._fees_paid

    @property
    def net_realized_pnl(self) -> Decimal:
        """``realized_pnl - fees_paid``."""
        return self._realized_pnl - self._fees_paid

    @property
    def last_price(self) -> Decimal | None:
        """The latest mark (or the first fill price if never marked)."""
        return self._last_price

    @property
    def updated_ns(self) -> int | None:
        """Execution time of the latest fill booked."""
        return self._updated_ns

    @property
    def is_flat(self) -> bool:
        """True when nothing is held."""
        return self._qty == 0

    @property
    def is_long(self) -> bool:
        """True when the quantity is positive."""
        return self._qty > 0

    @property
    def is_short(self) -> bool:
        """True when the quantity is negative."""
        return self._qty < 0

    @property
    def cost_basis(self) -> Decimal:
        """Signed cost of the open quantity, ``qty * avg_price`` (negative for a short).

        Returned from the exact running cost, not recomputed from the average.
        """
        return self._cost if self._qty >= 0 else -self._cost

    @property
    def market_value(self) -> Decimal:
        """``qty * last_price``, signed; zero while flat or unmarked."""
        if self._last_price is None:
            return _ZERO
        return self._qty * self._last_price

    @property
    def notional(self) -> Decimal:
        """Absolute market value."""
        return abs(self.market_value)

    @property
    def unrealized_pnl(self) -> Decimal:
        """``(last - avg) * qty``: what closing at the mark would realize, before fees."""
        if self._qty == 0 or self._last_price is None:
            return _ZERO
        return self.market_value - self.cost_basis

    @property
    def total_pnl(self) -> Decimal:
        """Realized plus unrealized, before fees."""
        return self._realized_pnl + self.unrealized_pnl
