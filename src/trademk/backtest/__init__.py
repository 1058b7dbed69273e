"""Backtesting: data loading, the fast (numba) and event-driven engines, statistics, reports.

``from trademk.backtest import backtest`` is the entry point (see ``api.backtest``).
"""

from trademk.backtest.api import RunSettings, backtest
from trademk.backtest.data import DataError, load_ohlcv
from trademk.backtest.optimize import OptimizationResult, optimize
from trademk.backtest.result import BacktestResult
from trademk.backtest.stats import STAT_NAMES, Stats

__all__ = [
    "STAT_NAMES",
    "BacktestResult",
    "DataError",
    "OptimizationResult",
    "RunSettings",
    "Stats",
    "backtest",
    "load_ohlcv",
    "optimize",
]
