"""``momentum``: hold the direction of the recent return (time-series momentum)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trademk.strategies.bars import Bars
from trademk.strategies.base import FloatArray, Strategy
from trademk.strategies.indicators import rate_of_change
from trademk.strategies.params import Param
from trademk.strategies.signals import Signals


class Momentum(Strategy):
    """Time-series momentum on the ``lookback``-bar return of the close.

    Long while the return is above ``threshold``, short while it is below
    ``-threshold``, flat in between: a long is closed once the return drops to
    ``threshold`` or below, a short once it rises to ``-threshold`` or above.
    With ``allow_short=False`` it is long-only.
    """

    name = "momentum"
    description = "Time-series momentum: long on a positive N-bar return, short on a negative one"

    lookback = Param(20, low=1, high=100_000, doc="bars in the return measured")
    threshold = Param(0.0, low=0.0, high=10.0, doc="return (0.01 = 1 %) needed to take a side")
    allow_short = Param(True, doc="go short on negative momentum; false makes it long-only")

    def indicators(self, bars: Bars) -> dict[str, FloatArray]:
        """The ``lookback``-bar rate of change of the close."""
        return {"roc": rate_of_change(bars.close, self.lookback)}

    def signals(self, bars: Bars, indicators: Mapping[str, FloatArray]) -> Signals:
        """Level signals on the rate of change."""
        roc = indicators["roc"]
        threshold = self.threshold
        with np.errstate(invalid="ignore"):
            return Signals.build(
                len(bars),
                long_entries=roc > threshold,
                long_exits=roc <= threshold,
                short_entries=roc < -threshold,
                short_exits=roc >= -threshold,
                allow_short=self.allow_short,
            )
