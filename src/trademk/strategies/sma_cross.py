"""``sma_cross``: trade the crossings of a fast and a slow simple moving average."""

from __future__ import annotations

from collections.abc import Mapping

from trademk.strategies.bars import Bars
from trademk.strategies.base import FloatArray, Strategy
from trademk.strategies.indicators import crossover, crossunder, sma
from trademk.strategies.params import Param, ParamError
from trademk.strategies.signals import Signals


class SmaCross(Strategy):
    """Moving-average crossover, reversing on every cross.

    When the ``fast``-bar SMA of the close crosses above the ``slow``-bar SMA,
    close any position and go long; when it crosses below, close any position
    and go short. A cross closes and reopens even a position on the same side
    (as backtesting.py's SmaCross example does). With ``allow_short=False`` a
    cross down only closes the long: the strategy is long-only.
    """

    name = "sma_cross"
    description = "SMA crossover: long on a cross up, short on a cross down (reversing)"

    fast = Param(10, low=1, high=100_000, doc="bars in the fast moving average")
    slow = Param(20, low=2, high=100_000, doc="bars in the slow moving average (> fast)")
    allow_short = Param(True, doc="go short on a cross down; false makes it long-only")

    def check_params(self) -> None:
        """``fast`` must be shorter than ``slow``."""
        if not self.fast < self.slow:
            raise ParamError(f"sma_cross needs fast < slow, got fast={self.fast} slow={self.slow}")

    def indicators(self, bars: Bars) -> dict[str, FloatArray]:
        """The two moving averages of the close."""
        return {"sma_fast": sma(bars.close, self.fast), "sma_slow": sma(bars.close, self.slow)}

    def signals(self, bars: Bars, indicators: Mapping[str, FloatArray]) -> Signals:
        """Long entries on crosses up, short entries on crosses down."""
        fast, slow = indicators["sma_fast"], indicators["sma_slow"]
        return Signals.build(
            len(bars),
            long_entries=crossover(fast, slow),
            short_entries=crossunder(fast, slow),
            allow_short=self.allow_short,
            reenter=True,
        )
