"""``BacktestResult``: statistics, trades, equity curve and plots of one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trademk.backtest.stats import Stats

__all__ = ["BacktestResult", "OpenPosition"]


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """The position still open after the last bar (not in the trade table)."""

    size: float
    entry_price: float
    entry_bar: int


@dataclass(frozen=True, slots=True, eq=False)
class BacktestResult:
    """What a backtest produced.

    ``stats`` maps backtesting.py's statistic names to values; ``trades`` is the
    closed-trade table; ``equity`` is the account value at each bar's close
    (a Series on the data's index); ``data`` is the OHLCV the run used;
    ``indicators`` are the strategy's indicator arrays; ``engine`` is
    ``"fast"`` or ``"event"``; ``settings`` records the run's parameters.
    """

    stats: Stats
    trades: pd.DataFrame
    equity: pd.Series
    data: pd.DataFrame
    strategy: str
    params: dict[str, Any]
    engine: str
    indicators: dict[str, np.ndarray] = field(default_factory=dict)
    open_position: OpenPosition | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def drawdown(self) -> pd.Series:
        """Drawdown from the running equity peak at each bar, as a fraction (0.1 = 10 %)."""
        values = self.equity.to_numpy(dtype=np.float64)
        return pd.Series(1 - values / np.maximum.accumulate(values), index=self.equity.index)

    @property
    def equity_curve(self) -> pd.DataFrame:
        """Equity and drawdown per bar (backtesting.py's ``_equity_curve`` columns)."""
        return pd.DataFrame({"Equity": self.equity, "DrawdownPct": self.drawdown})

    def plot(self, path: str | Path, *, png: bool = True) -> list[Path]:
        """Write the report: an HTML page with interactive charts (price with trades,
        equity, drawdown) at ``path`` and, with ``png``, a PNG beside it; a path
        ending in ``.png`` writes only the PNG. Returns the files written."""
        from trademk.backtest.report import write_html_report, write_png_report

        target = Path(path)
        if target.suffix.lower() == ".png":
            return [write_png_report(self, target)]
        written = [write_html_report(self, target)]
        if png:
            written.append(write_png_report(self, target.with_suffix(".png")))
        return written

    def summary(self) -> str:
        """The statistics as aligned text."""
        return repr(self.stats)
