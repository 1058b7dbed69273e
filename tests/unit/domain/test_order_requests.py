"""An order request becomes an order the same way everywhere (OMS, strategies worker, API)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademk.domain.market import AssetClass
from trademk.domain.orders import OrderSide, OrderStatus, OrderType, TimeInForce
from trademk.domain.signals import OrderRequest

T0 = 1_767_225_600_000_000_000


def request(**terms: object) -> OrderRequest:
    values: dict[str, object] = {
        "client_order_id": "c1",
        "symbol": "BTCUSDT",
        "side": OrderSide.BUY,
        "qty": Decimal("0.5"),
    }
    values.update(terms)
    return OrderRequest(**values)  # type: ignore[arg-type]


def test_the_order_carries_the_requests_terms_and_starts_initialized() -> None:
    order = request(
        type=OrderType.LIMIT,
        limit_price=Decimal("90"),
        time_in_force=TimeInForce.IOC,
        strategy_id="s1",
    ).to_order("paper", T0, AssetClass.CRYPTO)
    assert (order.client_order_id, order.symbol, order.side, order.qty) == (
        "c1",
        "BTCUSDT",
        OrderSide.BUY,
        Decimal("0.5"),
    )
    assert (order.type, order.limit_price, order.time_in_force) == (
        OrderType.LIMIT,
        Decimal("90"),
        TimeInForce.IOC,
    )
    assert (order.venue, order.created_ns, order.strategy_id) == ("paper", T0, "s1")
    assert order.status is OrderStatus.INITIALIZED


@pytest.mark.parametrize(
    ("asset_class", "expected"),
    [
        (AssetClass.CRYPTO, TimeInForce.GTC),
        (AssetClass.STOCK, TimeInForce.DAY),
        (None, TimeInForce.DAY),
    ],
)
def test_without_a_time_in_force_the_asset_decides(
    asset_class: AssetClass | None, expected: TimeInForce
) -> None:
    assert request().to_order("paper", T0, asset_class).time_in_force is expected


def test_bad_terms_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="limit_price"):
        request(type=OrderType.LIMIT).to_order("paper", T0, AssetClass.CRYPTO)
