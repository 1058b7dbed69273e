"""Instrument facts for the trading model: what kind of asset a symbol is, and the
checks every price and quantity passes before it enters an order, fill or position.

Money and quantities are ``Decimal`` (DESIGN.md §3). A float never gets in: it
would carry binary rounding error into cash and P&L, so the checks refuse it
with a ``TypeError`` instead of converting it silently.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from trademk.domain.market import AssetClass

# Quote assets that mark a concatenated symbol (Binance style, e.g. ``ETHBTC``,
# ``BTCUSDT``) as a crypto pair. Stock tickers have at most five letters plus an
# optional share-class suffix, so they are recognised first.
CRYPTO_QUOTE_ASSETS: Final = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "USD",
    "BTC",
    "ETH",
    "BNB",
    "EUR",
)
_STOCK_TICKER_RE: Final = re.compile(r"^[A-Z]{1,5}([.-][A-Z]{1,2})?$")
_CRYPTO_BASE_RE: Final = re.compile(r"^[A-Z0-9]{2,}$")


def asset_class_of(symbol: str) -> AssetClass:
    """The asset class of ``symbol``.

    ``BTC/USD`` (Alpaca crypto) and concatenated pairs ending in a known quote
    asset (``BTCUSDT``, ``ETHBTC``) are crypto; ``AAPL`` and ``BRK.B`` are stocks.
    A symbol that fits neither pattern raises ``ValueError`` rather than being
    guessed, because the asset class selects risk limits and trading hours.
    """
    if "/" in symbol:
        base, _, quote = symbol.partition("/")
        if _CRYPTO_BASE_RE.match(base) and _CRYPTO_BASE_RE.match(quote):
            return AssetClass.CRYPTO
        raise ValueError(f"cannot classify symbol {symbol!r}: expected BASE/QUOTE like BTC/USD")
    if _STOCK_TICKER_RE.match(symbol):
        return AssetClass.STOCK
    for quote in CRYPTO_QUOTE_ASSETS:
        if symbol.endswith(quote) and _CRYPTO_BASE_RE.match(symbol.removesuffix(quote)):
            return AssetClass.CRYPTO
    raise ValueError(
        f"cannot classify symbol {symbol!r}: not a stock ticker (AAPL, BRK.B) "
        f"nor a crypto pair (BTCUSDT, BTC/USD)"
    )


def require_decimal(name: str, value: object) -> Decimal:
    """``value`` as a finite ``Decimal``; ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def require_positive(name: str, value: object) -> Decimal:
    """``value`` as a ``Decimal`` greater than zero, or a clear error."""
    number = require_decimal(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be > 0, got {number}")
    return number


def require_non_negative(name: str, value: object) -> Decimal:
    """``value`` as a ``Decimal`` of zero or more, or a clear error."""
    number = require_decimal(name, value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {number}")
    return number


def require_timestamp_ns(name: str, value: object) -> int:
    """``value`` as a non-negative integer count of nanoseconds since the epoch (UTC)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int of nanoseconds, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 ns since the epoch, got {value}")
    return value


def require_text(name: str, value: object) -> str:
    """``value`` as a non-empty string, or a clear error."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value
