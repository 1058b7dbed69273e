"""``rsi_reversion``: buy oversold, sell overbought, exit when the RSI comes back."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trademk.strategies.bars import Bars
from trademk.strategies.base import FloatArray, Strategy
from trademk.strategies.indicators import rsi
from trademk.strategies.params import Param, ParamError
from trademk.strategies.signals import Signals


class RsiReversion(Strategy):
    """Mean reversion on Wilder's RSI of the close.

    Go long while the RSI is below ``lower`` and close the long once it rises
    above ``exit_level``; go short while it is above ``upper`` and close the
    short once it falls below ``exit_level``. An entry while already on that
    side does nothing. With ``allow_short=False`` an overbought reading only
    closes a long.
    """

    name = "rsi_reversion"
    description = "RSI mean reversion: long below `lower`, short above `upper`"

    period = Param(14, low=2, high=10_000, doc="RSI window in bars")
    lower = Param(30.0, low=0.0, high=100.0, doc="oversold level: go long below it")
    upper = Param(70.0, low=0.0, high=100.0, doc="overbought level: go short above it")
    exit_level = Param(50.0, low=0.0, high=100.0, doc="close a position when the RSI crosses it")
    allow_short = Param(True, doc="go short when overbought; false makes it long-only")

    def check_params(self) -> None:
        """``lower < exit_level < upper``."""
        if not self.lower < self.exit_level < self.upper:
            raise ParamError(
                "rsi_reversion needs lower < exit_level < upper, got "
                f"lower={self.lower} exit_level={self.exit_level} upper={self.upper}"
            )

    def indicators(self, bars: Bars) -> dict[str, FloatArray]:
        """The RSI of the close."""
        return {"rsi": rsi(bars.close, self.period)}

    def signals(self, bars: Bars, indicators: Mapping[str, FloatArray]) -> Signals:
        """Level signals on the RSI (NaN compares false: no signal while warming up)."""
        value = indicators["rsi"]
        with np.errstate(invalid="ignore"):
            return Signals.build(
                len(bars),
                long_entries=value < self.lower,
                long_exits=value > self.exit_level,
                short_entries=value > self.upper,
                short_exits=value < self.exit_level,
                allow_short=self.allow_short,
            )
