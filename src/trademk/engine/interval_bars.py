"""The bars strategies run on, live: every supported interval, built from trade ticks.

Intervals (``STRATEGY_INTERVALS``):

- ``1m`` comes from the live bar aggregator (:class:`BarAggregator`);
- multiples of a minute (``3m`` ... ``1d``) are resampled from those 1m bars
  by :class:`BarResampler`;
- sub-minute intervals that divide a minute (``5s`` ... ``30s``) are built
  straight from the trades by their own aggregator, for strategies that must
  react within seconds (the default sim strategies use them).

Every bar is aligned to UTC: its open time is a whole multiple of its length
since the epoch (``1h`` bars open on the hour, ``1d`` bars at 00:00 UTC). A span
without trades has no bar; a resampled bar covers only the minutes that had
trades. A bar closes as soon as a trade of a later interval arrives, or when
:meth:`StrategyBars.close_due` is told the time has passed its end plus the
grace period (for symbols that went quiet).
"""

from __future__ import annotations

from typing import Final

from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick, TickKind, interval_nanos
from trademk.engine.bar_aggregator import BarAggregator, OpenBar

__all__ = [
    "MINUTE_NS",
    "STRATEGY_INTERVALS",
    "BarResampler",
    "IntervalError",
    "StrategyBars",
    "interval_length",
]

STRATEGY_INTERVALS: Final = (
    "5s", "10s", "15s", "30s", "1m", "3m", "5m", "15m", "30m", "1h", "4h", "1d",
)  # fmt: skip
MINUTE_NS: Final = 60 * NANOS_PER_SECOND
MINUTE: Final = "1m"


class IntervalError(ValueError):
    """An interval strategies cannot run on; the message lists the supported ones."""


def interval_length(interval: str) -> int:
    """The length in ns of a supported strategy interval, else ``IntervalError``."""
    if interval not in STRATEGY_INTERVALS:
        raise IntervalError(
            f"unsupported interval {interval!r}: use one of {', '.join(STRATEGY_INTERVALS)}"
        )
    return interval_nanos(interval)


class BarResampler:
    """Bars of one multiple of a minute (``5m``, ``1h``, ``1d`` ...) from closed 1m bars.

    A bucket closes when its last minute's bar arrives, when a 1m bar of a
    later bucket arrives (the bucket ended in a gap), or by :meth:`close_due`.
    1m bars older than a symbol's open or last closed bucket are late: counted
    in ``late`` and left out, so a closed bar never changes.
    """

    def __init__(self, interval: str, *, grace_ns: int = 0) -> None:
        length = interval_length(interval)
        if length <= MINUTE_NS or length % MINUTE_NS:
            raise IntervalError(f"{interval!r} is not a multiple of a minute above 1m")
        if grace_ns < 0:
            raise ValueError("grace must not be negative")
        self.interval = interval
        self.interval_ns = length
        self.grace_ns = grace_ns
        self.late = 0
        self._open: dict[str, OpenBar] = {}
        self._closed_until: dict[str, int] = {}

    def add(self, bar: Bar) -> list[Bar]:
        """Fold one closed 1m bar in; the bars this closed, oldest first."""
        if bar.interval != MINUTE:
            raise ValueError(f"a resampler takes 1m bars, got a {bar.interval!r} bar")
        symbol = bar.symbol
        start = bar.ts - bar.ts % self.interval_ns
        closed: list[Bar] = []
        current = self._open.get(symbol)
        if current is not None and current.start == start:
            current.add_bar(bar)
        else:
            opened = current.start if current is not None else self._closed_until.get(symbol, start)
            if start < opened:
                self.late += 1
                return closed
            if current is not None:
                closed.append(self._close(symbol))
            self._open[symbol] = OpenBar.from_bar(start, bar)
        if bar.ts + MINUTE_NS >= start + self.interval_ns:
            closed.append(self._close(symbol))
        return closed

    def close_due(self, now_ns: int) -> list[Bar]:
        """Close every bucket whose interval ended at least ``grace_ns`` before ``now_ns``."""
        due = [
            symbol
            for symbol, bucket in self._open.items()
            if bucket.start + self.interval_ns + self.grace_ns <= now_ns
        ]
        return [self._close(symbol) for symbol in due]

    def _close(self, symbol: str) -> Bar:
        bucket = self._open.pop(symbol)
        self._closed_until[symbol] = bucket.start + self.interval_ns
        return bucket.to_bar(symbol, self.interval)


class StrategyBars:
    """Bars of every interval in use, from the trade ticks of every symbol.

    Call :meth:`use` for each interval a strategy needs; :meth:`on_tick` and
    :meth:`close_due` return the bars that closed, sub-minute bars first, then
    the 1m bar, then the bars resampled from it.
    """

    def __init__(self, *, grace_ns: int = 0) -> None:
        self.grace_ns = grace_ns
        self.minute = BarAggregator(MINUTE, grace_ns=grace_ns)
        self._seconds: dict[str, BarAggregator] = {}
        self._multiples: dict[str, BarResampler] = {}

    @property
    def intervals(self) -> list[str]:
        """Intervals built so far (1m always)."""
        return sorted({MINUTE, *self._seconds, *self._multiples}, key=interval_nanos)

    def use(self, interval: str) -> None:
        """Start building ``interval`` bars (no-op when already built)."""
        length = interval_length(interval)
        if length < MINUTE_NS:
            if interval not in self._seconds:
                self._seconds[interval] = BarAggregator(interval, grace_ns=self.grace_ns)
        elif length > MINUTE_NS and interval not in self._multiples:
            self._multiples[interval] = BarResampler(interval, grace_ns=self.grace_ns)

    def on_tick(self, tick: Tick) -> list[Bar]:
        """Fold a trade into every interval; the bars it closed."""
        if tick.kind is not TickKind.TRADE:
            return []
        closed: list[Bar] = []
        for aggregator in self._seconds.values():
            bar = aggregator.add(tick)
            if bar is not None:
                closed.append(bar)
        minute = self.minute.add(tick)
        if minute is not None:
            closed.extend(self._minute_closed(minute))
        return closed

    def close_due(self, now_ns: int) -> list[Bar]:
        """Bars of symbols that went quiet, closed once their interval plus grace is over."""
        closed: list[Bar] = []
        for aggregator in self._seconds.values():
            closed.extend(aggregator.close_due(now_ns))
        for minute in self.minute.close_due(now_ns):
            closed.extend(self._minute_closed(minute))
        for resampler in self._multiples.values():
            closed.extend(resampler.close_due(now_ns))
        return closed

    def _minute_closed(self, minute: Bar) -> list[Bar]:
        closed = [minute]
        for resampler in self._multiples.values():
            closed.extend(resampler.add(minute))
        return closed
