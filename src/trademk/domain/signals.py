"""What a strategy or a user asks for: an order request (a signal)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademk.domain.market import AssetClass
from trademk.domain.orders import Order, OrderSide, OrderType, TimeInForce


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A request to trade, before risk and before it becomes an order.

    ``client_order_id`` is chosen before submission (by the caller, or by the
    API when the caller gives none) and makes every retry idempotent.
    ``time_in_force`` None means the asset's default: GTC for crypto, DAY for
    stocks.
    """

    client_order_id: str
    symbol: str
    side: OrderSide
    qty: Decimal
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    strategy_id: str | None = None
    reason: str | None = None

    def to_order(self, venue: str, created_ns: int, asset_class: AssetClass | None) -> Order:
        """The INITIALIZED order this request becomes (``ValueError`` on bad terms): the
        one place every path builds it (the OMS, the strategies worker, the API's checks)."""
        default_tif = TimeInForce.GTC if asset_class is AssetClass.CRYPTO else TimeInForce.DAY
        return Order(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            type=self.type,
            qty=self.qty,
            venue=venue,
            created_ns=created_ns,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            time_in_force=self.time_in_force or default_tif,
            strategy_id=self.strategy_id,
        )

    def to_wire(self) -> dict[str, str]:
        """A flat string mapping for the message bus."""
        fields = {
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": str(self.side),
            "qty": str(self.qty),
            "type": str(self.type),
            "limit_price": "" if self.limit_price is None else str(self.limit_price),
            "stop_price": "" if self.stop_price is None else str(self.stop_price),
            "time_in_force": "" if self.time_in_force is None else str(self.time_in_force),
            "strategy_id": self.strategy_id or "",
            "reason": self.reason or "",
        }
        return fields

    @classmethod
    def from_wire(cls, fields: dict[str, str]) -> OrderRequest:
        def decimal_or_none(key: str) -> Decimal | None:
            value = fields.get(key, "")
            return Decimal(value) if value else None

        tif = fields.get("time_in_force", "")
        return cls(
            client_order_id=fields["client_order_id"],
            symbol=fields["symbol"],
            side=OrderSide(fields["side"]),
            qty=Decimal(fields["qty"]),
            type=OrderType(fields.get("type") or "market"),
            limit_price=decimal_or_none("limit_price"),
            stop_price=decimal_or_none("stop_price"),
            time_in_force=TimeInForce(tif) if tif else None,
            strategy_id=fields.get("strategy_id") or None,
            reason=fields.get("reason") or None,
        )
