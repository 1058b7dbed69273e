"""Fills: one execution of (part of) an order at a venue.

``OrderSide`` lives here because a fill needs it and ``orders`` imports this
module; ``trademk.domain.orders`` re-exports it, and that is where callers should
import it from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from trademk.domain.instruments import (
    require_non_negative,
    require_positive,
    require_text,
    require_timestamp_ns,
)

Liquidity = Literal["maker", "taker"]
LIQUIDITY_VALUES: Final[frozenset[str]] = frozenset({"maker", "taker"})


class OrderSide(enum.StrEnum):
    """Direction of an order or fill."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: multiply a quantity by it to get a signed quantity."""
        return 1 if self is OrderSide.BUY else -1

    @property
    def opposite(self) -> OrderSide:
        """The side that closes a position opened by this side."""
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade against one of our orders.

    ``qty`` and ``price`` are positive; ``fee`` is what we paid, in the quote
    currency, and is never negative. ``trade_id`` is the venue's id for the
    execution; together with ``client_order_id`` it identifies the fill, so a
    replay after a reconnect can be recognised and ignored. ``ts_ns`` is the
    venue's execution time in UTC nanoseconds.
    """

    client_order_id: str
    venue_order_id: str
    trade_id: str
    symbol: str
    side: OrderSide
    qty: Decimal
    price: Decimal
    fee: Decimal
    ts_ns: int
    venue: str
    strategy_id: str | None = None
    liquidity: Liquidity | None = None

    def __post_init__(self) -> None:
        if self._is_plainly_valid():
            return
        for name in ("client_order_id", "venue_order_id", "trade_id", "symbol", "venue"):
            require_text(name, getattr(self, name))
        # Coerce "buy"/"sell" strings to the enum so equality checks downstream hold.
        object.__setattr__(self, "side", OrderSide(self.side))
        require_positive("fill qty", self.qty)
        require_positive("fill price", self.price)
        require_non_negative("fill fee", self.fee)
        require_timestamp_ns("fill ts_ns", self.ts_ns)
        if self.liquidity is not None and self.liquidity not in LIQUIDITY_VALUES:
            raise ValueError(f"liquidity must be 'maker', 'taker' or None, got {self.liquidity!r}")

    def _is_plainly_valid(self) -> bool:
        """The common case: every field already of its exact type and in range.

        When this is False, ``__post_init__`` runs the full checks, which coerce a
        text side or raise the precise error.
        """
        texts = (self.client_order_id, self.venue_order_id, self.trade_id, self.symbol, self.venue)
        for text in texts:
            if type(text) is not str or not text.strip():
                return False
        qty, price, fee, ts_ns = self.qty, self.price, self.fee, self.ts_ns
        return (
            type(self.side) is OrderSide
            and type(qty) is Decimal
            and qty.is_finite()
            and qty > 0
            and type(price) is Decimal
            and price.is_finite()
            and price > 0
            and type(fee) is Decimal
            and fee.is_finite()
            and fee >= 0
            and type(ts_ns) is int
            and ts_ns >= 0
            and (self.liquidity is None or self.liquidity in LIQUIDITY_VALUES)
        )

    @property
    def signed_qty(self) -> Decimal:
        """``qty`` with the sign of the side: positive for a buy, negative for a sell."""
        return self.qty if self.side is OrderSide.BUY else -self.qty

    @property
    def notional(self) -> Decimal:
        """``qty * price``, unsigned, before fees."""
        return self.qty * self.price

    @property
    def cash_flow(self) -> Decimal:
        """Change in cash this fill causes: ``-(qty * price) - fee`` for a buy,
        ``qty * price - fee`` for a sell."""
        return -self.signed_qty * self.price - self.fee
