"""Live OHLCV bars from trade ticks, one open bar per symbol.

Bars are aligned to UTC: a ``1m`` bar covers ``[t, t + 60 s)`` with ``t`` a
whole minute since the epoch (``1h`` a whole hour, ``1d`` a UTC day). A bar
closes when the first trade of a later interval arrives (:meth:`add` returns
it) or when the clock passes its end (:meth:`close_due`, for symbols that went
quiet). Minutes without trades produce no bar.

Trades older than the symbol's open bar (or than its last closed bar) are
late: they are counted in ``late`` and left out, so a closed bar never changes.
Quotes are ignored. ``vwap`` is the volume-weighted price, or the close when
every trade of the bar had zero size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trademk.domain.market import Bar, Tick, TickKind, interval_nanos


class OpenBar:
    """A bar still being built, from trade ticks or from finer bars."""

    __slots__ = (
        "close",
        "exchange",
        "high",
        "low",
        "notional",
        "open",
        "start",
        "trades",
        "volume",
    )

    def __init__(
        self, start: int, exchange: str, price: float, volume: float, notional: float, trades: int
    ) -> None:
        self.start = start
        self.exchange = exchange
        self.open = self.high = self.low = self.close = price
        self.volume = volume
        self.notional = notional
        self.trades = trades

    @classmethod
    def from_tick(cls, start: int, tick: Tick) -> OpenBar:
        return cls(start, tick.exchange, tick.price, tick.qty, tick.price * tick.qty, 1)

    @classmethod
    def from_bar(cls, start: int, bar: Bar) -> OpenBar:
        opened = cls(start, bar.exchange, bar.open, bar.volume, bar.vwap * bar.volume, bar.trades)
        opened.high, opened.low, opened.close = bar.high, bar.low, bar.close
        return opened

    def add(self, tick: Tick) -> None:
        price = tick.price
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume += tick.qty
        self.notional += price * tick.qty
        self.trades += 1
        self.exchange = tick.exchange

    def add_bar(self, bar: Bar) -> None:
        self.high = max(self.high, bar.high)
        self.low = min(self.low, bar.low)
        self.close = bar.close
        self.volume += bar.volume
        self.notional += bar.vwap * bar.volume
        self.trades += bar.trades
        self.exchange = bar.exchange

    def to_bar(self, symbol: str, interval: str) -> Bar:
        vwap = self.notional / self.volume if self.volume > 0 else self.close
        return Bar(
            symbol=symbol,
            exchange=self.exchange,
            interval=interval,
            ts=self.start,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            vwap=vwap,
            trades=self.trades,
        )


@dataclass(slots=True)
class AggregatorCounters:
    """What an aggregator did: trades folded in, bars closed, late trades left out."""

    trades: int = 0
    bars: int = 0
    late: int = 0
    by_symbol_late: dict[str, int] = field(default_factory=dict)


class BarAggregator:
    """Builds bars of one interval (``1m``, ``5m``, ``1h``, ...) from trade ticks."""

    def __init__(self, interval: str = "1m", *, grace_ns: int = 0) -> None:
        """``grace_ns``: how long after its end :meth:`close_due` keeps a bar open for
        trades that arrive late from the venue."""
        if grace_ns < 0:
            raise ValueError("grace must not be negative")
        self.interval = interval
        self.interval_ns = interval_nanos(interval)
        self.grace_ns = grace_ns
        self.counters = AggregatorCounters()
        self._open: dict[str, OpenBar] = {}
        self._closed_until: dict[str, int] = {}

    def bucket(self, ts_ns: int) -> int:
        """The open time of the interval containing ``ts_ns``."""
        return ts_ns - ts_ns % self.interval_ns

    def add(self, tick: Tick) -> Bar | None:
        """Fold a trade in; the bar it closed, if it starts a later interval."""
        if tick.kind is not TickKind.TRADE:
            return None
        start = tick.ts - tick.ts % self.interval_ns
        symbol = tick.symbol
        current = self._open.get(symbol)
        if current is not None and start == current.start:
            current.add(tick)
            self.counters.trades += 1
            return None
        opened = current.start if current is not None else self._closed_until.get(symbol, start)
        if start < opened:
            self._count_late(symbol)
            return None
        self.counters.trades += 1
        self._open[symbol] = OpenBar.from_tick(start, tick)
        if current is None:
            return None
        return self._close(symbol, current)

    def close_due(self, now_ns: int) -> list[Bar]:
        """Close every open bar whose interval ended at least ``grace_ns`` before ``now_ns``."""
        due = [
            symbol
            for symbol, bar in self._open.items()
            if bar.start + self.interval_ns + self.grace_ns <= now_ns
        ]
        return [self._close(symbol, self._open.pop(symbol)) for symbol in due]

    def flush(self) -> list[Bar]:
        """Close every open bar now (end of a stream)."""
        symbols = list(self._open)
        return [self._close(symbol, self._open.pop(symbol)) for symbol in symbols]

    def current(self, symbol: str) -> Bar | None:
        """The bar still forming for ``symbol``, if any."""
        bar = self._open.get(symbol)
        return None if bar is None else bar.to_bar(symbol, self.interval)

    def _close(self, symbol: str, bar: OpenBar) -> Bar:
        self._closed_until[symbol] = bar.start + self.interval_ns
        self.counters.bars += 1
        return bar.to_bar(symbol, self.interval)

    def _count_late(self, symbol: str) -> None:
        self.counters.late += 1
        late = self.counters.by_symbol_late
        late[symbol] = late.get(symbol, 0) + 1
