"""``donchian_breakout``: follow breakouts of the recent high/low channel."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trademk.strategies.bars import Bars
from trademk.strategies.base import FloatArray, Strategy
from trademk.strategies.indicators import highest, lowest, shift
from trademk.strategies.params import Param
from trademk.strategies.signals import Signals


class DonchianBreakout(Strategy):
    """Channel breakout (the Turtle rule).

    Go long when the close rises above the highest high of the previous
    ``entry`` bars; close the long when it falls below the lowest low of the
    previous ``exit`` bars. Shorts mirror this: enter below the ``entry``-bar
    low, close above the ``exit``-bar high. The channels exclude the current
    bar. With ``allow_short=False`` a downside breakout only closes a long.
    """

    name = "donchian_breakout"
    description = "Donchian channel breakout: long above the N-bar high, short below the low"

    entry = Param(20, low=1, high=100_000, doc="bars in the breakout channel")
    exit = Param(10, low=1, high=100_000, doc="bars in the (usually shorter) exit channel")
    allow_short = Param(True, doc="go short on a downside breakout; false makes it long-only")

    def indicators(self, bars: Bars) -> dict[str, FloatArray]:
        """Entry and exit channels over the previous bars."""
        return {
            "entry_high": shift(highest(bars.high, self.entry)),
            "entry_low": shift(lowest(bars.low, self.entry)),
            "exit_high": shift(highest(bars.high, self.exit)),
            "exit_low": shift(lowest(bars.low, self.exit)),
        }

    def signals(self, bars: Bars, indicators: Mapping[str, FloatArray]) -> Signals:
        """Breakouts through the channels."""
        close = bars.close
        with np.errstate(invalid="ignore"):
            return Signals.build(
                len(bars),
                long_entries=close > indicators["entry_high"],
                long_exits=close < indicators["exit_low"],
                short_entries=close < indicators["entry_low"],
                short_exits=close > indicators["exit_high"],
                allow_short=self.allow_short,
            )
