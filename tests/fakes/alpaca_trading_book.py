"""The state behind the fake Alpaca trading API: orders, a settable market, cash, positions.

Pure and synchronous (no I/O): ``AlpacaTradingFake`` serves it over HTTP and
the ``trade_updates`` stream. Every state change returns the trade updates it
causes, shaped as Alpaca documents them (numbers as strings, RFC 3339 times).

Matching: a market order fills at the ask (buy) or bid (sell) as soon as a
market is set; a limit order fills when the market crosses its limit, at the
market price; a stop (limit) order triggers when the market reaches its stop
and then behaves as a market (limit) order. ``bid_size``/``ask_size`` cap what
one market update can fill (None: unlimited), which gives partial fills. IOC
and FOK orders cancel whatever does not fill at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from tests.fakes.alpaca_trading_model import (
    WORKING_STATUSES,
    ZERO,
    BookError,
    FakeOrder,
    FakePosition,
    Quote,
    number,
    rfc3339,
    text,
)
from trademk.domain.universe import CATALOG
from trademk.engine.clock import Clock

CRYPTO_TIF = frozenset({"gtc", "ioc"})
STOCK_TIF = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
CRYPTO_TYPES = frozenset({"market", "limit", "stop_limit"})
ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit"})
DEFAULT_CRYPTO = frozenset(
    i.alpaca_symbol for i in CATALOG.values() if i.is_crypto and i.alpaca_symbol is not None
)
_STOCK_RE = re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$")


class AlpacaBook:
    """Orders, market, cash and positions of one fake Alpaca account."""

    def __init__(
        self,
        clock: Clock,
        cash: Decimal = Decimal(100_000),
        crypto_symbols: Iterable[str] = DEFAULT_CRYPTO,
        emit_pending_cancel: bool = False,
    ) -> None:
        self.clock = clock
        self.cash = cash
        self.crypto_symbols = frozenset(crypto_symbols)
        self.emit_pending_cancel = emit_pending_cancel
        self.orders: dict[str, FakeOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.markets: dict[str, Quote] = {}
        self.positions: dict[str, FakePosition] = {}
        self.account_id = str(uuid.uuid4())
        self.created_ns = clock.now_ns()

    # -- orders -------------------------------------------------------------------

    def place(self, body: dict[str, Any]) -> FakeOrder:
        """Validate and record a ``POST /v2/orders`` body; the order is ``accepted``."""
        symbol = str(body.get("symbol") or "")
        crypto = "/" in symbol
        if (crypto and symbol not in self.crypto_symbols) or (
            not crypto and not _STOCK_RE.match(symbol)
        ):
            raise BookError(422, 40010001, f"asset not found for {symbol or 'empty symbol'}")
        if body.get("notional") is not None:
            raise BookError(422, 40010001, "notional orders are not supported by this fake")
        qty = number(body, "qty")
        if qty is None:
            raise BookError(422, 40010001, "qty is required")
        side, kind, tif = body.get("side"), body.get("type"), body.get("time_in_force")
        if side not in ("buy", "sell"):
            raise BookError(422, 40010001, "side must be buy or sell")
        if kind not in (CRYPTO_TYPES if crypto else ORDER_TYPES):
            raise BookError(422, 42210000, f"invalid order type for this asset: {kind}")
        if tif not in (CRYPTO_TIF if crypto else STOCK_TIF):
            raise BookError(422, 42210000, f"invalid {'crypto ' if crypto else ''}time_in_force")
        limit, stop = number(body, "limit_price"), number(body, "stop_price")
        if (limit is None) == (kind in ("limit", "stop_limit")):
            raise BookError(422, 40010001, "limit_price is required for limit orders only")
        if (stop is None) == (kind in ("stop", "stop_limit")):
            raise BookError(422, 40010001, "stop_price is required for stop orders only")
        client_order_id = str(body.get("client_order_id") or uuid.uuid4())
        if len(client_order_id) > 128:
            raise BookError(422, 40010001, "client_order_id must be at most 128 characters")
        if client_order_id in self.by_client_id:
            raise BookError(422, 40010001, "client_order_id must be unique")
        self._check_funds(symbol, side, qty, limit or stop)
        now = self.clock.now_ns()
        order = FakeOrder(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            type=kind,
            time_in_force=tif,
            qty=qty,
            limit_price=limit,
            stop_price=stop,
            created_ns=now,
            updated_ns=now,
        )
        self.orders[order.id] = order
        self.by_client_id[client_order_id] = order.id
        return order

    def _check_funds(self, symbol: str, side: str, qty: Decimal, price: Decimal | None) -> None:
        if side == "buy":
            quote = self.markets.get(symbol)
            estimate = price or (quote.ask if quote else None)
            if estimate is not None and qty * estimate > self.buying_power():
                raise BookError(403, 40310000, "insufficient buying power")
            return
        if "/" in symbol:
            held = self.positions.get(symbol, FakePosition()).qty
            selling = sum(
                (
                    o.leaves
                    for o in self.orders.values()
                    if o.is_open and o.symbol == symbol and o.side == "sell"
                ),
                ZERO,
            )
            available = held - selling
            if qty > available:
                base = symbol.partition("/")[0]
                raise BookError(
                    403,
                    40310000,
                    f"insufficient balance for {base} (requested: {qty}, available: {available})",
                )

    def activate(self, order: FakeOrder) -> list[dict[str, Any]]:
        """Route an accepted order: ``new``, then whatever the market fills at once."""
        if order.status not in ("accepted", "pending_new"):
            return []
        order.status = "new"
        order.updated_ns = self.clock.now_ns()
        updates = [self._update("new", order)]
        quote = self.markets.get(order.symbol)
        if order.time_in_force == "fok" and not self._fillable_whole(order, quote):
            return [*updates, *self._close(order, "canceled")]
        if quote is not None:
            updates.extend(self._match(order, quote))
        if order.time_in_force in ("ioc", "fok") and order.is_open:
            updates.extend(self._close(order, "canceled"))
        return updates

    def _fillable_whole(self, order: FakeOrder, quote: Quote | None) -> bool:
        if quote is None or self._price(order, quote) is None:
            return False
        size = quote.ask_size if order.side == "buy" else quote.bid_size
        return size is None or size >= order.qty

    def cancel(self, order_id: str) -> list[dict[str, Any]]:
        """``DELETE /v2/orders/{id}``: cancel an open order (422 when it is not open)."""
        order = self.orders.get(order_id)
        if order is None:
            raise BookError(404, 40410000, "order not found")
        if not order.is_open or order.status == "pending_cancel":
            raise BookError(422, 42210000, f'order is already in "{order.status}" state')
        updates = []
        if self.emit_pending_cancel:
            order.status = "pending_cancel"
            order.updated_ns = self.clock.now_ns()
            updates.append(self._update("pending_cancel", order))
        return [*updates, *self._close(order, "canceled")]

    def close(self, order: FakeOrder, status: str) -> list[dict[str, Any]]:
        """End an open order as ``canceled``, ``expired``, ``done_for_day`` or ``rejected``."""
        if not order.is_open:
            raise BookError(422, 42210000, f'order is already in "{order.status}" state')
        return self._close(order, status)

    def _close(self, order: FakeOrder, status: str) -> list[dict[str, Any]]:
        now = self.clock.now_ns()
        order.status = status
        order.updated_ns = now
        if status == "canceled":
            order.canceled_ns = now
        elif status in ("expired", "done_for_day"):
            order.expired_ns = now
        elif status == "rejected":
            order.failed_ns = now
        return [self._update(status, order)]

    # -- market and fills -----------------------------------------------------------------

    def set_market(
        self,
        symbol: str,
        bid: Decimal,
        ask: Decimal,
        bid_size: Decimal | None = None,
        ask_size: Decimal | None = None,
    ) -> list[dict[str, Any]]:
        """New top of book for ``symbol``; working orders that now cross fill."""
        quote = Quote(bid, ask, bid_size, ask_size)
        self.markets[symbol] = quote
        updates: list[dict[str, Any]] = []
        for order in sorted(self.orders.values(), key=lambda o: o.created_ns):
            if order.symbol == symbol and order.status in WORKING_STATUSES:
                updates.extend(self._match(order, quote))
        return updates

    def _price(self, order: FakeOrder, quote: Quote) -> Decimal | None:
        buy = order.side == "buy"
        price = quote.ask if buy else quote.bid
        if order.type in ("stop", "stop_limit") and not order.stop_triggered:
            assert order.stop_price is not None
            if (price < order.stop_price) if buy else (price > order.stop_price):
                return None
            order.stop_triggered = True
        if order.type in ("market", "stop"):
            return price
        assert order.limit_price is not None
        crosses = price <= order.limit_price if buy else price >= order.limit_price
        return price if crosses else None

    def _match(self, order: FakeOrder, quote: Quote) -> list[dict[str, Any]]:
        price = self._price(order, quote)
        if price is None:
            return []
        size_field = "ask_size" if order.side == "buy" else "bid_size"
        available = getattr(quote, size_field)
        qty = order.leaves if available is None else min(order.leaves, available)
        if qty <= 0:
            return []
        if available is not None:
            setattr(quote, size_field, available - qty)
        return [self.execute(order, qty, price)]

    def execute(self, order: FakeOrder, qty: Decimal, price: Decimal) -> dict[str, Any]:
        """Fill ``qty`` of a working order at ``price``; the ``fill``/``partial_fill`` update."""
        if order.status not in WORKING_STATUSES or not 0 < qty <= order.leaves:
            raise BookError(422, 42210000, f"cannot fill {qty} of order in {order.status} state")
        now = self.clock.now_ns()
        order.filled_qty += qty
        order.filled_notional += qty * price
        order.updated_ns = now
        order.status = "filled" if order.leaves == 0 else "partially_filled"
        if order.status == "filled":
            order.filled_ns = now
        signed = qty if order.side == "buy" else -qty
        self.cash -= signed * price
        position = self.positions.setdefault(order.symbol, FakePosition())
        position.apply(signed, price)
        execution_id = str(uuid.uuid4())
        order.executions.append(execution_id)
        event = "fill" if order.status == "filled" else "partial_fill"
        return self._update(
            event,
            order,
            execution_id=execution_id,
            price=text(price),
            qty=text(qty),
            position_qty=text(position.qty),
        )

    def _update(self, event: str, order: FakeOrder, **extra: Any) -> dict[str, Any]:
        data = {"event": event, "order": order.to_json(), **extra}
        data["timestamp"] = rfc3339(order.updated_ns, digits=9)
        return data

    # -- account ------------------------------------------------------------------------------

    def _mark(self, symbol: str, position: FakePosition) -> Decimal:
        quote = self.markets.get(symbol)
        return (quote.bid + quote.ask) / 2 if quote else position.avg_price

    def buying_power(self) -> Decimal:
        reserved = ZERO
        for order in self.orders.values():
            if order.is_open and order.side == "buy":
                quote = self.markets.get(order.symbol)
                price = order.limit_price or order.stop_price or (quote.ask if quote else ZERO)
                reserved += order.leaves * price
        return self.cash - reserved

    def equity(self) -> Decimal:
        return self.cash + sum((p.qty * self._mark(s, p) for s, p in self.positions.items()), ZERO)

    def positions_json(self) -> list[dict[str, Any]]:
        """``GET /v2/positions``: crypto symbols without the slash, as Alpaca sends them."""
        result = []
        for symbol, position in sorted(self.positions.items()):
            if position.qty == 0:
                continue
            crypto = "/" in symbol
            mark = self._mark(symbol, position)
            cost = position.qty * position.avg_price
            value = position.qty * mark
            result.append(
                {
                    "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-asset:{symbol}")),
                    "symbol": symbol.replace("/", ""),
                    "exchange": "CRYPTO" if crypto else "NASDAQ",
                    "asset_class": "crypto" if crypto else "us_equity",
                    "asset_marginable": not crypto,
                    "avg_entry_price": text(position.avg_price),
                    "qty": text(position.qty),
                    "qty_available": text(position.qty),
                    "side": "long" if position.qty > 0 else "short",
                    "market_value": text(value),
                    "cost_basis": text(cost),
                    "unrealized_pl": text(value - cost),
                    "unrealized_plpc": text((value - cost) / abs(cost)) if cost else "0",
                    "unrealized_intraday_pl": text(value - cost),
                    "unrealized_intraday_plpc": text((value - cost) / abs(cost)) if cost else "0",
                    "current_price": text(mark),
                    "lastday_price": text(mark),
                    "change_today": "0",
                }
            )
        return result

    def account_json(self) -> dict[str, Any]:
        """``GET /v2/account`` for a cash account (multiplier 1)."""
        equity = self.equity()
        long_value = sum(
            (p.qty * self._mark(s, p) for s, p in self.positions.items() if p.qty > 0), ZERO
        )
        short_value = sum(
            (p.qty * self._mark(s, p) for s, p in self.positions.items() if p.qty < 0), ZERO
        )
        power = text(self.buying_power())
        return {
            "id": self.account_id,
            "account_number": "PA3FAKE00001",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "buying_power": power,
            "regt_buying_power": power,
            "daytrading_buying_power": "0",
            "non_marginable_buying_power": power,
            "cash": text(self.cash),
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "portfolio_value": text(equity),
            "equity": text(equity),
            "last_equity": text(equity),
            "long_market_value": text(long_value),
            "short_market_value": text(short_value),
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": 0,
            "multiplier": "1",
            "shorting_enabled": True,
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "created_at": rfc3339(self.created_ns),
        }
