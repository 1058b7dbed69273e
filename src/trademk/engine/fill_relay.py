"""Fills as they travel on the bus (``fills`` topic) and back into domain objects.

The OMS publishes each fill it books as ``engine.oms.fill_payload``; processes
without that OMS (the API's shared book, the strategies worker, the other
execution workers) turn the payload back into the same ``Fill`` with
``fill_of``. Over Redis the payload arrives as JSON: Decimals as their exact
strings, so nothing is lost on the way.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide


def fill_of(payload: Mapping[str, Any]) -> Fill:
    """The ``Fill`` a ``fills`` payload (``engine.oms.fill_payload``) describes.

    Raises ``KeyError``, ``TypeError``, ``ValueError`` or ``ArithmeticError``
    (a bad decimal) on a payload that lacks a field or holds a bad value.
    """
    strategy_id = payload.get("strategy_id")
    return Fill(
        client_order_id=str(payload["client_order_id"]),
        venue_order_id=str(payload.get("venue_order_id") or payload["client_order_id"]),
        trade_id=str(payload["trade_id"]),
        symbol=str(payload["symbol"]),
        side=OrderSide(payload["side"]),
        qty=Decimal(str(payload["qty"])),
        price=Decimal(str(payload["price"])),
        fee=Decimal(str(payload["fee"])),
        ts_ns=int(payload["ts"]),
        venue=str(payload["venue"]),
        strategy_id=str(strategy_id) if strategy_id else None,
    )
