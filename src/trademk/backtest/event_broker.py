"""The strategy side of the event chain: order intents become sized ``OrderRequest``s.

``IntentRouter`` is the StrategyBroker a strategy's order API talks to during
an event-driven run. It queues intents and, when the engine says the market
is at a price, turns them into requests for the OMS: a CLOSE flattens the
position, a TARGET trades the difference, a BUY/SELL is sized by
``Sizing.units_for`` from the buying power at that moment (so an entry after a
close sees the freed cash), the commission and the price the venue will fill
at. It also keeps the float view of the account the strategy reads, updated
on every fill.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide, TimeInForce
from trademk.domain.portfolio import Portfolio
from trademk.domain.signals import OrderRequest
from trademk.strategies.base import IntentKind, OrderIntent

__all__ = ["IntentRouter"]

_MIN_UNITS: Final = 1e-12


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


class IntentRouter:
    """Queues a strategy's intents and sizes them into order requests; see the module doc."""

    def __init__(
        self,
        portfolio: Portfolio,
        symbol: str,
        *,
        cash: float,
        commission: float,
        slippage: float,
        lot_size: float,
        strategy_id: str,
    ) -> None:
        self._portfolio = portfolio
        self.symbol = symbol
        self._commission = commission
        self._slippage = slippage
        self._lot = lot_size
        self.strategy_id = strategy_id
        self.pending: list[OrderIntent] = []
        self._position = 0.0
        self._cash = cash
        self._last_price = math.nan
        self._sequence = 0
        self.dropped = 0

    # -- StrategyBroker ---------------------------------------------------------

    def submit(self, intent: OrderIntent) -> None:
        """Queue ``intent``; the engine sends it at the next execution point."""
        self.pending.append(intent)

    def position(self) -> float:
        """Signed units held."""
        return self._position

    def cash(self) -> float:
        """Cash in the account."""
        return self._cash

    def equity(self) -> float:
        """Cash plus the position at the latest price the engine gave."""
        if self._position == 0:
            return self._cash
        return self._cash + self._position * self._last_price

    # -- engine side ----------------------------------------------------------------

    def set_last_price(self, price: float) -> None:
        """The latest market price (a bar's close, or the price orders execute at)."""
        self._last_price = price

    def on_fill(self, fill: Fill) -> None:
        """Update the float account view after a fill of our symbol."""
        if fill.symbol == self.symbol:
            self._position = float(self._portfolio.qty(self.symbol))
        self._cash = float(self._portfolio.cash)

    def take_pending(self) -> list[OrderIntent]:
        """The queued intents, oldest first; the queue is emptied."""
        pending, self.pending = self.pending, []
        return pending

    def fill_price(self, side: OrderSide, price: float) -> float:
        """The price a market order of ``side`` fills at when the market is at ``price``."""
        if side is OrderSide.BUY:
            return price * (1.0 + self._slippage)
        return price * (1.0 - self._slippage)

    def buying_power(self) -> float:
        """Equity not tied up in positions (the paper venue's margin-1x rule)."""
        portfolio = self._portfolio
        return float(portfolio.equity - portfolio.gross_exposure)

    def request_for(self, intent: OrderIntent, price: float) -> OrderRequest | None:
        """The request ``intent`` amounts to with the market at ``price``; None if nothing
        is to be traded (flat on CLOSE, already at TARGET, or an entry sized to 0)."""
        signed = self._signed_units(intent, price)
        if signed is None or abs(signed) < _MIN_UNITS:
            if intent.kind in (IntentKind.BUY, IntentKind.SELL):
                self.dropped += 1
            return None
        self._sequence += 1
        side = OrderSide.BUY if signed > 0 else OrderSide.SELL
        return OrderRequest(
            client_order_id=f"{self.strategy_id}-{self._sequence}",
            symbol=self.symbol,
            side=side,
            qty=_decimal(abs(signed)),
            type=intent.order_type,
            limit_price=None if intent.limit_price is None else _decimal(intent.limit_price),
            stop_price=None if intent.stop_price is None else _decimal(intent.stop_price),
            time_in_force=TimeInForce.GTC,
            strategy_id=self.strategy_id,
            reason=intent.tag or str(intent.kind),
        )

    def _signed_units(self, intent: OrderIntent, price: float) -> float | None:
        held = float(self._portfolio.qty(self.symbol))
        if intent.kind is IntentKind.CLOSE:
            return -held
        if intent.kind is IntentKind.TARGET:
            return None if intent.target is None else intent.target - held
        side = OrderSide.BUY if intent.kind is IntentKind.BUY else OrderSide.SELL
        reference = _reference_price(intent, side, price, self)
        if intent.sizing is None:
            return None
        units = intent.sizing.units_for(self.buying_power(), reference, self._commission, self._lot)
        return units if side is OrderSide.BUY else -units


def _reference_price(
    intent: OrderIntent, side: OrderSide, price: float, router: IntentRouter
) -> float:
    """The price an entry is sized at: its limit, else the (slipped) price it would fill at."""
    if intent.limit_price is not None:
        return intent.limit_price
    if intent.stop_price is not None:
        buy = side is OrderSide.BUY
        price = max(intent.stop_price, price) if buy else min(intent.stop_price, price)
    return router.fill_price(side, price)
