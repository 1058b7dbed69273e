"""The portfolio: cash plus positions by (symbol, venue), valued at the latest marks.

Cash moves by exactly what each fill costs or brings in, fees included, so at
every moment

    equity == starting_cash + realized_pnl + unrealized_pnl - fees

(up to the rounding of the decimal context in partial closes, see
``trademk.domain.position``). Fills are assumed to be quoted in the base
currency. Nothing here refuses a trade for lack of cash: that is the risk
engine's decision, made before the order exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from trademk.domain.fills import Fill
from trademk.domain.instruments import require_non_negative, require_positive, require_text
from trademk.domain.position import Position

_ZERO: Final = Decimal(0)

PositionKey = tuple[str, str]
"""(symbol, venue)."""


class _FillKeys:
    """A set of (venue, client_order_id, trade_id) without a tuple per fill.

    Kept as venue -> client_order_id -> trade id (a set once an order has more
    than one fill): most orders fill once, so booking a fill usually adds no
    object for the garbage collector to track.
    """

    __slots__ = ("_by_venue",)

    def __init__(self) -> None:
        self._by_venue: dict[str, dict[str, str | set[str]]] = {}

    def contains(self, venue: str, client_order_id: str, trade_id: str) -> bool:
        orders = self._by_venue.get(venue)
        known = None if orders is None else orders.get(client_order_id)
        if known is None:
            return False
        return known == trade_id if isinstance(known, str) else trade_id in known

    def add(self, venue: str, client_order_id: str, trade_id: str) -> None:
        orders = self._by_venue.get(venue)
        if orders is None:
            orders = self._by_venue[venue] = {}
        known = orders.get(client_order_id)
        if known is None:
            orders[client_order_id] = trade_id
        elif isinstance(known, str):
            if known != trade_id:
                orders[client_order_id] = {known, trade_id}
        else:
            known.add(trade_id)


class Portfolio:
    """Cash, positions and P&L of one account in ``base_currency``."""

    __slots__ = (
        "_applied_fills",
        "_by_symbol",
        "_cash",
        "_marks",
        "_positions",
        "base_currency",
        "starting_cash",
    )

    def __init__(self, starting_cash: Decimal, base_currency: str = "USD") -> None:
        self.starting_cash = require_non_negative("starting_cash", starting_cash)
        self.base_currency = require_text("base_currency", base_currency)
        self._cash = starting_cash
        self._positions: dict[PositionKey, Position] = {}
        # The same positions by symbol (every venue), for per-symbol sums.
        self._by_symbol: dict[str, list[Position]] = {}
        self._marks: dict[str, Decimal] = {}
        # (venue, client_order_id, trade_id): both sides of one venue trade can
        # be ours, so the trade id alone does not identify our fill.
        self._applied_fills = _FillKeys()

    def __repr__(self) -> str:
        return (
            f"Portfolio(cash={self._cash} {self.base_currency}, "
            f"positions={len(self._positions)}, equity={self.equity})"
        )

    def apply(self, fill: Fill) -> bool:
        """Book ``fill`` into its position and cash; False if this fill was already booked.

        A buy takes ``qty * price + fee`` out of cash; a sell brings in
        ``qty * price - fee``.
        """
        applied = self._applied_fills
        if applied.contains(fill.venue, fill.client_order_id, fill.trade_id):
            return False
        position = self._position_for(fill.symbol, fill.venue)
        position.apply(fill)
        self._cash += fill.cash_flow
        applied.add(fill.venue, fill.client_order_id, fill.trade_id)
        return True

    def _position_for(self, symbol: str, venue: str) -> Position:
        position = self._positions.get((symbol, venue))
        if position is None:
            position = Position(symbol, venue)
            known = self._marks.get(symbol)
            if known is not None:
                position.mark(known)
            self._positions[(symbol, venue)] = position
            self._by_symbol.setdefault(symbol, []).append(position)
        return position

    def mark(self, symbol: str, price: Decimal) -> None:
        """Value every position in ``symbol`` (at any venue) at ``price`` from now on."""
        price = require_positive("mark price", price)
        self._marks[symbol] = price
        for position in self._by_symbol.get(symbol, ()):
            position.mark(price)

    # -- positions --------------------------------------------------------

    @property
    def positions(self) -> Mapping[PositionKey, Position]:
        """Every position ever opened, flat ones included, by (symbol, venue); read-only."""
        return MappingProxyType(self._positions)

    def position(self, symbol: str, venue: str) -> Position | None:
        """The position in ``symbol`` at ``venue``, if one was ever opened."""
        return self._positions.get((symbol, venue))

    def open_positions(self) -> Iterator[Position]:
        """Positions that are not flat."""
        return (p for p in self._positions.values() if not p.is_flat)

    def qty(self, symbol: str) -> Decimal:
        """Signed quantity held in ``symbol`` across venues."""
        total = _ZERO
        for position in self._by_symbol.get(symbol, ()):
            total += position.qty
        return total

    def last_price(self, symbol: str) -> Decimal | None:
        """The latest mark given for ``symbol``, if any."""
        return self._marks.get(symbol)

    # -- valuation ----------------------------------------------------------

    @property
    def cash(self) -> Decimal:
        """Cash after every booked fill and fee."""
        return self._cash

    @property
    def equity(self) -> Decimal:
        """Cash plus the signed market value of every position."""
        return self._cash + self.net_exposure

    @property
    def gross_exposure(self) -> Decimal:
        """Sum of absolute market values."""
        total = _ZERO
        for position in self._positions.values():
            total += position.notional
        return total

    @property
    def net_exposure(self) -> Decimal:
        """Sum of signed market values (longs minus shorts)."""
        total = _ZERO
        for position in self._positions.values():
            total += position.market_value
        return total

    def exposure(self, symbol: str) -> Decimal:
        """Signed market value held in ``symbol`` across venues."""
        total = _ZERO
        for position in self._by_symbol.get(symbol, ()):
            total += position.market_value
        return total

    def exposures(self) -> dict[str, Decimal]:
        """Signed market value per symbol, for symbols with an open position."""
        result: dict[str, Decimal] = {}
        for position in self.open_positions():
            result[position.symbol] = result.get(position.symbol, _ZERO) + position.market_value
        return result

    # -- P&L ------------------------------------------------------------------

    @property
    def realized_pnl(self) -> Decimal:
        """Realized P&L of every position, before fees."""
        return sum((p.realized_pnl for p in self._positions.values()), _ZERO)

    @property
    def unrealized_pnl(self) -> Decimal:
        """Unrealized P&L of every position at the latest marks."""
        return sum((p.unrealized_pnl for p in self._positions.values()), _ZERO)

    @property
    def fees(self) -> Decimal:
        """Every fee paid."""
        return sum((p.fees_paid for p in self._positions.values()), _ZERO)

    @property
    def net_realized_pnl(self) -> Decimal:
        """Realized P&L after fees."""
        return self.realized_pnl - self.fees

    @property
    def total_pnl(self) -> Decimal:
        """``realized + unrealized - fees``, which equals ``equity - starting_cash``."""
        return self.realized_pnl + self.unrealized_pnl - self.fees
