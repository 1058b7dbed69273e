"""Matching rules of the paper venue: what price and size the market offers an order.

Conventions:

- Prices and sizes arrive as floats in ticks and become ``Decimal`` through
  ``Decimal(repr(x))``: the shortest decimal that round-trips to the float, so a
  quote of ``100.1`` fills at exactly ``100.1``. Fill prices are never rounded
  afterwards (slippage multiplies exactly).
- A quoted size that is missing or not positive means "not reported" and is
  treated as unlimited; so is a trade print without a size.
- Aggressive (taker) orders, i.e. market orders and marketable limit orders at
  the moment they become active: a buy takes the ask, a sell the bid; without a
  quote on that side they take the last trade price (with unlimited size: there
  is no book to limit it). Slippage moves the price against the taker by
  ``slippage_bps``; a limit order never pays beyond its limit, so it fills at
  the better of its limit and the slipped quote.
- Resting (maker) limit orders fill at their limit price: a buy when a quote's
  ask is at or below the limit, or a trade prints strictly below it; a sell
  when the bid is at or above the limit, or a trade prints strictly above it.
  A print exactly at the limit does not fill (the queue position is unknown).
  The fill size is at most the quoted size, or the print's size.
- What a quote's size leaves of a market order keeps working (DAY/GTC) and
  takes each new quote as a taker; IOC cancels it, FOK fills all or nothing.
  Our fills take quoted size away for the rest of the same tick only: orders
  resting on one symbol share a quote in time priority.
- Stops trigger on the reference price: the last trade, or the quote mid while
  the symbol has no trades. A buy stop triggers at ``price >= stop``, a sell
  stop at ``price <= stop``; a stop then acts as a market order and a
  stop-limit as a limit order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from trademk.domain.orders import Order, OrderSide
from trademk.engine.price_cache import PriceDecimals, PriceSnapshot

_ZERO: Final = Decimal(0)
_BPS_DIVISOR: Final = Decimal(10_000)


def to_price(value: float) -> Decimal:
    """A float price as the shortest ``Decimal`` that round-trips to it."""
    return Decimal(repr(value))


def to_size(value: float | None) -> Decimal | None:
    """A float size as ``Decimal``; None (unlimited) when missing or not positive."""
    if value is None or not value > 0:
        return None
    return Decimal(repr(value))


def _optional_price(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


class MarketLiquidity:
    """What the market offers takers right now; sizes shrink as our orders take them.

    ``None`` sizes are unlimited; a size of zero means our own orders already
    took everything quoted on that side during this tick.
    """

    __slots__ = ("ask", "ask_size", "bid", "bid_size", "last")

    def __init__(
        self,
        bid: Decimal | None = None,
        bid_size: Decimal | None = None,
        ask: Decimal | None = None,
        ask_size: Decimal | None = None,
        last: Decimal | None = None,
    ) -> None:
        self.bid = bid
        self.bid_size = bid_size
        self.ask = ask
        self.ask_size = ask_size
        self.last = last

    @classmethod
    def from_snapshot(cls, snapshot: PriceSnapshot | None) -> MarketLiquidity:
        """The liquidity of the latest prices known for a symbol (empty if none)."""
        if snapshot is None:
            return cls()
        return cls(
            bid=_optional_price(snapshot.bid),
            bid_size=to_size(snapshot.bid_size),
            ask=_optional_price(snapshot.ask),
            ask_size=to_size(snapshot.ask_size),
            last=_optional_price(snapshot.last_price),
        )

    @classmethod
    def from_prices(cls, prices: PriceDecimals | None) -> MarketLiquidity:
        """``from_snapshot`` from the cache's ``Decimal`` view (same conversions, done once)."""
        if prices is None:
            return cls()
        return cls(
            bid=prices.bid,
            bid_size=prices.bid_size,
            ask=prices.ask,
            ask_size=prices.ask_size,
            last=prices.last_price,
        )

    def quote_for(self, side: OrderSide) -> tuple[Decimal | None, Decimal | None]:
        """(price, size) of the quote side an order of ``side`` trades against."""
        if side is OrderSide.BUY:
            return self.ask, self.ask_size
        return self.bid, self.bid_size

    def take(self, side: OrderSide, qty: Decimal, from_quote: bool) -> None:
        """Record that an order of ``side`` took ``qty`` from the quote."""
        if not from_quote:
            return
        if side is OrderSide.BUY:
            if self.ask_size is not None:
                self.ask_size -= qty
        elif self.bid_size is not None:
            self.bid_size -= qty


class TakerMatch:
    """Where an aggressive order can fill now: price, available size, and its source."""

    __slots__ = ("from_quote", "price", "size")

    def __init__(self, price: Decimal, size: Decimal | None, from_quote: bool) -> None:
        self.price = price
        self.size = size
        self.from_quote = from_quote


class Slippage:
    """Moves taker prices against the taker by a number of basis points."""

    __slots__ = ("_buy_factor", "_sell_factor", "bps")

    def __init__(self, bps: Decimal) -> None:
        if not isinstance(bps, Decimal) or not bps.is_finite():
            raise TypeError(f"slippage_bps must be a finite Decimal, got {bps!r}")
        if not _ZERO <= bps < _BPS_DIVISOR:
            raise ValueError(f"slippage_bps must be in [0, 10000), got {bps}")
        self.bps = bps
        self._buy_factor = 1 + bps / _BPS_DIVISOR
        self._sell_factor = 1 - bps / _BPS_DIVISOR

    def apply(self, side: OrderSide, price: Decimal) -> Decimal:
        """``price`` worsened for a taker on ``side``."""
        if self.bps == 0:
            return price
        return price * (self._buy_factor if side is OrderSide.BUY else self._sell_factor)


def taker_match(
    side: OrderSide, limit: Decimal | None, liquidity: MarketLiquidity, slippage: Slippage
) -> TakerMatch | None:
    """The fill an aggressive order of ``side`` (limit or market) gets now, or None."""
    quote, size = liquidity.quote_for(side)
    from_quote = quote is not None
    if quote is not None:
        if size is not None and size <= 0:
            return None
        reference = quote
    elif liquidity.last is not None:
        reference, size = liquidity.last, None
    else:
        return None
    price = slippage.apply(side, reference)
    if limit is not None:
        if side is OrderSide.BUY:
            if reference > limit:
                return None
            price = min(price, limit)
        else:
            if reference < limit:
                return None
            price = max(price, limit)
    return TakerMatch(price, size, from_quote)


def quote_crosses(side: OrderSide, limit: Decimal, liquidity: MarketLiquidity) -> bool:
    """Whether the quote reaches a resting limit: ask <= limit (buy) or bid >= limit (sell)."""
    quote, size = liquidity.quote_for(side)
    if quote is None or (size is not None and size <= 0):
        return False
    return quote <= limit if side is OrderSide.BUY else quote >= limit


def trade_prints_through(side: OrderSide, limit: Decimal, trade_price: Decimal) -> bool:
    """Whether a print is strictly through a resting limit (below a buy, above a sell)."""
    return trade_price < limit if side is OrderSide.BUY else trade_price > limit


def stop_triggered(side: OrderSide, stop: Decimal, reference: Decimal) -> bool:
    """Buy stops trigger at ``reference >= stop``, sell stops at ``reference <= stop``."""
    return reference >= stop if side is OrderSide.BUY else reference <= stop


def fill_qty(leaves: Decimal, available: Decimal | None) -> Decimal:
    """How much of ``leaves`` fills against ``available`` (None = unlimited)."""
    if available is None or available >= leaves:
        return leaves
    return max(available, _ZERO)


class WorkingOrder:
    """The venue's record of one order: its own ``Order`` copy plus matching state.

    ``reservation`` is the buying power the order held when accepted; it shrinks
    pro rata as the order fills. ``triggered`` is False only for a stop that has
    not triggered yet. ``expires_ns`` is when a DAY order expires; the engine
    watches it (``expiry_scheduled``) only once the order rests.
    """

    __slots__ = (
        "_fills",
        "expires_ns",
        "expiry_scheduled",
        "order",
        "reservation",
        "triggered",
        "venue_order_id",
    )

    def __init__(self, order: Order, venue_order_id: str) -> None:
        self.order = order
        self.venue_order_id = venue_order_id
        self.reservation = _ZERO
        self.triggered = order.stop_price is None
        self.expires_ns: int | None = None
        self.expiry_scheduled = False
        self._fills = 0

    def next_trade_id(self) -> str:
        """A trade id unique to this venue: ``<venue_order_id>-<fill number>``."""
        self._fills += 1
        return f"{self.venue_order_id}-{self._fills}"

    @property
    def reserved(self) -> Decimal:
        """The part of the reservation still held: pro rata to the quantity left."""
        leaves = self.order.leaves_qty
        if leaves == 0 or self.reservation == 0:
            return _ZERO
        return self.reservation * leaves / self.order.qty


class SymbolBook:
    """Open orders of one symbol: active ones in time priority, and untriggered stops."""

    __slots__ = ("resting", "stops")

    def __init__(self) -> None:
        self.resting: list[WorkingOrder] = []
        self.stops: list[WorkingOrder] = []

    def remove(self, working: WorkingOrder) -> None:
        """Take ``working`` off the book if it is there."""
        if working in self.resting:
            self.resting.remove(working)
        elif working in self.stops:
            self.stops.remove(working)

    def same_side_leaves(self, side: OrderSide) -> Decimal:
        """Quantity still working on ``side`` across this symbol's open orders."""
        total = _ZERO
        for working in self.resting:
            if working.order.side is side:
                total += working.order.leaves_qty
        for working in self.stops:
            if working.order.side is side:
                total += working.order.leaves_qty
        return total

    def __bool__(self) -> bool:
        return bool(self.resting or self.stops)
