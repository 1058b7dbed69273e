"""Market data: ticks (trades and quotes) and OHLCV bars.

Prices and sizes are float64 for speed (DESIGN.md §3); timestamps are integer
nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import enum
import re
from typing import Final

import msgspec

NANOS_PER_SECOND: Final = 1_000_000_000
NANOS_PER_MILLI: Final = 1_000_000


class TickKind(enum.StrEnum):
    TRADE = "trade"
    QUOTE = "quote"


class AssetClass(enum.StrEnum):
    CRYPTO = "crypto"
    STOCK = "stock"


class Tick(msgspec.Struct, frozen=True, gc=False):
    """One market event: a trade print or a top-of-book quote.

    ``price`` is the trade price for a trade and the bid/ask mid for a quote.
    ``seq`` is the venue's trade id (trades) or book update id (quotes) when the
    venue provides one. ``ts`` is the venue's event time; ``received`` is when we
    read the frame off the socket (both ns).
    """

    symbol: str
    exchange: str
    kind: TickKind
    ts: int
    price: float
    qty: float = 0.0
    bid: float | None = None
    bid_size: float | None = None
    ask: float | None = None
    ask_size: float | None = None
    seq: int | None = None
    received: int = 0


class Bar(msgspec.Struct, frozen=True, gc=False):
    """OHLCV over ``[ts, ts + interval)``; ``ts`` is the open time in ns."""

    symbol: str
    exchange: str
    interval: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    trades: int = 0


_INTERVAL_RE: Final = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SUPPORTED_BAR_INTERVALS: Final = ("1m", "5m", "15m", "1h", "1d")


def interval_nanos(interval: str) -> int:
    """Length of a bar interval such as ``1m``, ``15m``, ``1h`` or ``1d`` in ns."""
    match = _INTERVAL_RE.match(interval)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(
            f"invalid interval {interval!r}: use a positive number followed by s, m, h or d"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] * NANOS_PER_SECOND
