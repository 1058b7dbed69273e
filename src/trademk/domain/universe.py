"""The default tradable universe: what each symbol is, for seeding and routing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from trademk.domain.market import AssetClass


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable symbol. ``alpaca_symbol`` is Alpaca's name for it, if Alpaca lists it."""

    ticker: str
    name: str
    exchange: str
    asset_class: AssetClass
    alpaca_symbol: str | None = None

    @property
    def is_crypto(self) -> bool:
        return self.asset_class is AssetClass.CRYPTO


def _crypto(base: str, name: str, on_alpaca: bool) -> Instrument:
    return Instrument(
        ticker=f"{base}USDT",
        name=name,
        exchange="BINANCE",
        asset_class=AssetClass.CRYPTO,
        alpaca_symbol=f"{base}/USD" if on_alpaca else None,
    )


def _stock(ticker: str, name: str, exchange: str) -> Instrument:
    return Instrument(ticker, name, exchange, AssetClass.STOCK, alpaca_symbol=ticker)


# Liquid USDT pairs only: no stablecoin pairs (USDCUSDT) and nothing delisted or
# migrated (MATICUSDT became POL). Alpaca lists a subset of these coins.
CATALOG: Final[dict[str, Instrument]] = {
    instrument.ticker: instrument
    for instrument in (
        _crypto("BTC", "Bitcoin", True),
        _crypto("ETH", "Ethereum", True),
        _crypto("BNB", "BNB", False),
        _crypto("SOL", "Solana", True),
        _crypto("XRP", "XRP", True),
        _crypto("ADA", "Cardano", False),
        _crypto("DOGE", "Dogecoin", True),
        _crypto("TRX", "TRON", False),
        _crypto("AVAX", "Avalanche", True),
        _crypto("LINK", "Chainlink", True),
        _crypto("DOT", "Polkadot", True),
        _crypto("LTC", "Litecoin", True),
        _crypto("BCH", "Bitcoin Cash", True),
        _crypto("XLM", "Stellar", False),
        _crypto("UNI", "Uniswap", True),
        _stock("AAPL", "Apple Inc.", "NASDAQ"),
        _stock("MSFT", "Microsoft Corporation", "NASDAQ"),
        _stock("NVDA", "NVIDIA Corporation", "NASDAQ"),
        _stock("AMZN", "Amazon.com, Inc.", "NASDAQ"),
        _stock("GOOGL", "Alphabet Inc. Class A", "NASDAQ"),
        _stock("META", "Meta Platforms, Inc.", "NASDAQ"),
        _stock("TSLA", "Tesla, Inc.", "NASDAQ"),
        _stock("AVGO", "Broadcom Inc.", "NASDAQ"),
        _stock("JPM", "JPMorgan Chase & Co.", "NYSE"),
        _stock("V", "Visa Inc.", "NYSE"),
        _stock("LLY", "Eli Lilly and Company", "NYSE"),
        _stock("WMT", "Walmart Inc.", "NYSE"),
        _stock("XOM", "Exxon Mobil Corporation", "NYSE"),
        _stock("MA", "Mastercard Incorporated", "NYSE"),
        _stock("COST", "Costco Wholesale Corporation", "NASDAQ"),
        _stock("SPY", "SPDR S&P 500 ETF Trust", "NYSEARCA"),
        _stock("QQQ", "Invesco QQQ Trust", "NASDAQ"),
    )
}

STABLECOINS: Final = frozenset({"USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP", "PYUSD"})


def instrument_for(ticker: str, asset_class: AssetClass) -> Instrument:
    """The catalog entry for ``ticker``, or a plain description of an unlisted one."""
    known = CATALOG.get(ticker)
    if known is not None:
        return known
    if asset_class is AssetClass.CRYPTO:
        if not ticker.endswith("USDT") or ticker.removesuffix("USDT") in STABLECOINS:
            raise ValueError(f"{ticker}: crypto symbols must be non-stablecoin USDT pairs")
        return _crypto(ticker.removesuffix("USDT"), ticker.removesuffix("USDT"), False)
    return _stock(ticker, ticker, "US")
