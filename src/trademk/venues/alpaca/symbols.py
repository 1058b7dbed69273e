"""Symbol mapping between Trademk (Binance-style ``BTCUSDT``, stock tickers) and Alpaca.

Alpaca names a crypto pair ``BTC/USD`` in orders and ``BTCUSD`` (no slash) in
positions; stocks keep their ticker. Our crypto universe is quoted in USDT, and
Alpaca's USD pairs stand in for it, so ``BTCUSDT`` trades as ``BTC/USD`` and
comes back as ``BTCUSDT``. Which coins Alpaca lists is the ``alpaca_symbol`` of
the universe catalog: an unlisted coin is refused before anything is sent.
"""

from __future__ import annotations

from typing import Final

from trademk.domain.errors import RejectedError
from trademk.domain.instruments import asset_class_of
from trademk.domain.market import AssetClass
from trademk.domain.universe import CATALOG, instrument_for

# Quote currencies of Alpaca crypto pairs, longest first so ``BTCUSDT`` splits as
# BTC/USDT rather than BTCU/SDT or BTCUSD/T.
_ALPACA_CRYPTO_QUOTES: Final = ("USDT", "USDC", "USD", "BTC")
# Alpaca's USD pairs are our USDT pairs.
_QUOTE_TO_OURS: Final = {"USD": "USDT"}

_FROM_ALPACA: Final[dict[str, str]] = {
    instrument.alpaca_symbol: ticker
    for ticker, instrument in CATALOG.items()
    if instrument.alpaca_symbol is not None
}


def is_alpaca_crypto(alpaca_symbol: str) -> bool:
    """True for an Alpaca crypto pair such as ``BTC/USD``."""
    return "/" in alpaca_symbol


def to_alpaca_symbol(symbol: str) -> str:
    """Alpaca's name for ``symbol``; ``RejectedError`` when Alpaca does not list it.

    ``BTCUSDT`` → ``BTC/USD``; ``AAPL`` → ``AAPL``. A symbol that is neither a
    stock ticker nor a crypto pair raises ``RejectedError`` too (it could never
    be traded there).
    """
    try:
        asset_class = asset_class_of(symbol)
        instrument = instrument_for(symbol, asset_class)
    except ValueError as err:
        raise RejectedError(f"{symbol} cannot be traded on Alpaca: {err}") from None
    if instrument.alpaca_symbol is None:
        raise RejectedError(f"{symbol} is not listed on Alpaca")
    return instrument.alpaca_symbol


def from_alpaca_symbol(alpaca_symbol: str, asset_class: str | None = None) -> str:
    """Our symbol for an Alpaca order or position symbol.

    ``BTC/USD`` and ``BTCUSD`` (positions, ``asset_class="crypto"``) → ``BTCUSDT``;
    other quotes keep their currency (``ETH/BTC`` → ``ETHBTC``); stocks are
    unchanged. ``asset_class`` is Alpaca's (``crypto`` or ``us_equity``); it is
    needed only to recognise slash-less crypto symbols.
    """
    known = _FROM_ALPACA.get(alpaca_symbol)
    if known is not None:
        return known
    if is_alpaca_crypto(alpaca_symbol):
        base, _, quote = alpaca_symbol.partition("/")
        return _join(base, quote)
    if asset_class == "crypto":
        for quote in _ALPACA_CRYPTO_QUOTES:
            base = alpaca_symbol.removesuffix(quote)
            if base and base != alpaca_symbol:
                return from_alpaca_symbol(f"{base}/{quote}")
        raise ValueError(f"cannot split Alpaca crypto symbol {alpaca_symbol!r} into base/quote")
    return alpaca_symbol


def _join(base: str, quote: str) -> str:
    if not base or not quote:
        raise ValueError(f"Alpaca crypto symbol {base}/{quote} lacks a base or a quote")
    return f"{base}{_QUOTE_TO_OURS.get(quote, quote)}"


def asset_class_for(alpaca_symbol: str) -> AssetClass:
    """Our asset class for an Alpaca order symbol."""
    return AssetClass.CRYPTO if is_alpaca_crypto(alpaca_symbol) else AssetClass.STOCK
