"""Synthetic price dynamics for the simulated venue.

Each symbol follows a geometric random walk (log-normal, so prices stay
positive) at an annualised volatility typical of its asset class, quoted with
a spread of a few basis points on the symbol's price grid. Trades print at the
bid or the ask with log-normally distributed sizes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Tick, TickKind

_CRYPTO_YEAR_NS: Final = int(365.25 * 86_400 * NANOS_PER_SECOND)
_STOCK_YEAR_NS: Final = int(252 * 6.5 * 3600 * NANOS_PER_SECOND)  # trading time only
# Stocks move only in session; a gap (overnight, weekend) adds at most this much variance.
_STOCK_MAX_STEP_NS: Final = 3600 * NANOS_PER_SECOND
_CRYPTO_QUOTE_SUFFIXES: Final = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "BTC", "ETH")


@dataclass(frozen=True, slots=True)
class SimInstrument:
    """How one simulated symbol behaves."""

    symbol: str
    asset_class: AssetClass
    start_price: float
    annual_volatility: float
    spread_bps: float = 2.0
    median_trade_qty: float = 1.0
    trade_qty_sigma: float = 1.0
    price_decimals: int = 2
    qty_decimals: int = 0

    def __post_init__(self) -> None:
        if self.start_price <= 0:
            raise ValueError(f"{self.symbol}: start_price must be positive")
        if self.annual_volatility < 0 or self.spread_bps <= 0:
            raise ValueError(f"{self.symbol}: volatility must be >= 0 and spread_bps > 0")
        if self.median_trade_qty <= 0 or self.trade_qty_sigma < 0:
            raise ValueError(f"{self.symbol}: trade sizes must be positive")


def _crypto(
    symbol: str, price: float, vol: float, spread: float, qty: float, pdec: int, qdec: int
) -> SimInstrument:
    return SimInstrument(symbol, AssetClass.CRYPTO, price, vol, spread, qty, 1.2, pdec, qdec)


def _stock(symbol: str, price: float, vol: float) -> SimInstrument:
    return SimInstrument(symbol, AssetClass.STOCK, price, vol, 1.5, 60.0, 1.1, 2, 0)


DEFAULT_INSTRUMENTS: Final[dict[str, SimInstrument]] = {
    i.symbol: i
    for i in (
        _crypto("BTCUSDT", 65_000.0, 0.65, 0.5, 0.01, 2, 5),
        _crypto("ETHUSDT", 3_200.0, 0.75, 1.0, 0.15, 2, 4),
        _crypto("SOLUSDT", 150.0, 0.80, 2.0, 3.0, 2, 2),
        _crypto("BNBUSDT", 580.0, 0.60, 2.0, 0.5, 2, 3),
        _crypto("XRPUSDT", 0.55, 0.75, 3.0, 600.0, 4, 0),
        _crypto("ADAUSDT", 0.45, 0.75, 3.0, 600.0, 4, 1),
        _crypto("DOGEUSDT", 0.15, 0.80, 3.0, 3_000.0, 5, 0),
        _crypto("AVAXUSDT", 30.0, 0.80, 3.0, 8.0, 2, 2),
        _crypto("LINKUSDT", 15.0, 0.80, 3.0, 15.0, 3, 2),
        _crypto("LTCUSDT", 80.0, 0.70, 3.0, 2.0, 2, 3),
        _stock("AAPL", 190.0, 0.25),
        _stock("MSFT", 420.0, 0.24),
        _stock("GOOGL", 170.0, 0.30),
        _stock("AMZN", 180.0, 0.32),
        _stock("NVDA", 120.0, 0.40),
        _stock("META", 500.0, 0.35),
        _stock("TSLA", 250.0, 0.40),
        _stock("SPY", 550.0, 0.18),
        _stock("QQQ", 470.0, 0.22),
    )
}


def instrument_for(symbol: str) -> SimInstrument:
    """The default instrument for ``symbol``; unknown symbols get a generic profile.

    Symbols that look like crypto pairs (``XYZUSDT``, ``XYZ/USD``) become a
    $10 coin at 80 % volatility; anything else a $100 stock at 30 %.
    """
    known = DEFAULT_INSTRUMENTS.get(symbol)
    if known is not None:
        return known
    if not symbol or not symbol.strip():
        raise ValueError("symbol must be a non-empty string")
    if "/" in symbol or symbol.upper().endswith(_CRYPTO_QUOTE_SUFFIXES):
        return _crypto(symbol, 10.0, 0.80, 3.0, 10.0, 4, 2)
    return _stock(symbol, 100.0, 0.30)


class SymbolWalk:
    """Mutable per-symbol state: the latent mid price and sequence counters."""

    __slots__ = ("instrument", "last_ns", "mid", "seq")

    def __init__(self, instrument: SimInstrument, start_ns: int) -> None:
        self.instrument = instrument
        self.mid = instrument.start_price
        self.last_ns = start_ns
        self.seq = 0


class MarketModel:
    """Draws the next quote or trade for a symbol from a seeded RNG."""

    def __init__(self, rng: random.Random, exchange: str, trade_fraction: float) -> None:
        if not 0.0 <= trade_fraction <= 1.0:
            raise ValueError("trade_fraction must be within [0, 1]")
        self._rng = rng
        self._exchange = exchange
        self._trade_fraction = trade_fraction

    def advance(self, walk: SymbolWalk, ts: int) -> None:
        """Move the mid along its random walk from ``walk.last_ns`` to ``ts``."""
        inst = walk.instrument
        elapsed = max(0, ts - walk.last_ns)
        walk.last_ns = max(walk.last_ns, ts)
        if elapsed == 0 or inst.annual_volatility == 0:
            return
        if inst.asset_class is AssetClass.STOCK:
            years = min(elapsed, _STOCK_MAX_STEP_NS) / _STOCK_YEAR_NS
        else:
            years = elapsed / _CRYPTO_YEAR_NS
        sigma = inst.annual_volatility
        shock = self._rng.gauss(0.0, 1.0)
        walk.mid *= math.exp(-0.5 * sigma * sigma * years + sigma * math.sqrt(years) * shock)

    def next_tick(self, walk: SymbolWalk, ts: int, received: int) -> Tick:
        """Advance ``walk`` to ``ts`` and emit a trade or a quote."""
        self.advance(walk, ts)
        walk.seq += 1
        bid, ask = self._book(walk)
        inst = walk.instrument
        if self._rng.random() < self._trade_fraction:
            price = ask if self._rng.random() < 0.5 else bid
            qty = self._size(inst.median_trade_qty, inst.trade_qty_sigma, inst.qty_decimals)
            return Tick(
                inst.symbol,
                self._exchange,
                TickKind.TRADE,
                ts,
                price,
                qty,
                seq=walk.seq,
                received=received,
            )
        depth = inst.median_trade_qty * 5
        return Tick(
            inst.symbol,
            self._exchange,
            TickKind.QUOTE,
            ts,
            round((bid + ask) / 2, inst.price_decimals + 1),
            bid=bid,
            bid_size=self._size(depth, 0.8, inst.qty_decimals),
            ask=ask,
            ask_size=self._size(depth, 0.8, inst.qty_decimals),
            seq=walk.seq,
            received=received,
        )

    def _book(self, walk: SymbolWalk) -> tuple[float, float]:
        inst = walk.instrument
        tick_size = 10.0**-inst.price_decimals
        half = walk.mid * inst.spread_bps / 20_000 * self._rng.uniform(0.5, 1.5)
        bid_ticks = max(1, math.floor((walk.mid - half) / tick_size))
        ask_ticks = max(bid_ticks + 1, math.ceil((walk.mid + half) / tick_size))
        decimals = inst.price_decimals
        return round(bid_ticks * tick_size, decimals), round(ask_ticks * tick_size, decimals)

    def _size(self, median: float, sigma: float, decimals: int) -> float:
        raw = self._rng.lognormvariate(math.log(median), sigma)
        step = 10.0**-decimals
        return round(max(step, raw), decimals)
