"""The parts of alpaca-py the trading adapter uses, imported in one place.

``alpaca.trading`` imports ``websockets.legacy``, which websockets deprecated;
that warning is about alpaca-py's code, not ours, so it is silenced here, once.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.enums import Sort
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
    from alpaca.trading.requests import (
        GetOrdersRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        OrderRequest,
        StopLimitOrderRequest,
        StopOrderRequest,
    )
    from alpaca.trading.stream import TradingStream

__all__ = [
    "APIError",
    "GetOrdersRequest",
    "LimitOrderRequest",
    "MarketOrderRequest",
    "OrderRequest",
    "OrderSide",
    "QueryOrderStatus",
    "Sort",
    "StopLimitOrderRequest",
    "StopOrderRequest",
    "TimeInForce",
    "TradingClient",
    "TradingStream",
]
