"""Binance spot market data: combined-stream schemas and the live feed."""

from trademk.venues.binance.feed import BinanceFeed
from trademk.venues.binance.schemas import BinanceFrameError, parse_frame

__all__ = ["BinanceFeed", "BinanceFrameError", "parse_frame"]
