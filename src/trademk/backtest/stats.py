"""Backtest statistics, under the names and definitions backtesting.py prints.

Everything is computed from our own equity curve (one value per bar), trade
table (``trademk.backtest.trades``) and closes. Conventions, as in
backtesting.py:

- Returns are compounded: the mean period return is geometric, and
  ``Return (Ann.)`` is ``(1 + mean)^N - 1``. Periods are calendar days (the
  equity's last value each day) unless the bars are weekly, monthly or yearly;
  ``N`` is 252 trading days a year, 365 when a fair share of the bars fall on
  weekends (crypto), or 52/12/1 for weekly/monthly/yearly bars. The bar
  period is the median spacing of the last 100 bars.
- ``Volatility (Ann.)`` is that of compounded returns:
  ``sqrt((var + (1 + mean)^2)^N - (1 + mean)^(2N))``.
- Sharpe is ``Return (Ann.) / Volatility (Ann.)`` (risk-free rate 0); Sortino
  divides the annual return by the annualised root-mean-square of the negative
  period returns; Calmar by the maximum drawdown.
- A drawdown period runs from a peak to the next new peak (or the end), and
  only counts if at least one bar lies in between; durations are rounded up to
  the resolution of the bar period.
- Trade statistics use the closed trades: ``Avg. Trade`` is the geometric mean
  of their returns, ``Profit Factor`` sums returns (not P&L), ``SQN`` is
  ``sqrt(n) * mean(PnL) / std(PnL)``, ``Kelly`` is ``W - (1 - W) / R``.
- ``Buy & Hold Return`` is measured from the close of the strategy's last
  warm-up bar to the last close. ``Exposure Time`` counts bars inside closed
  trades, entry and exit bars included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["STAT_NAMES", "Stats", "compute_stats", "drawdown_periods"]

FloatArray = npt.NDArray[np.float64]

STAT_NAMES: Final = (
    "Start",
    "End",
    "Duration",
    "Exposure Time [%]",
    "Equity Final [$]",
    "Equity Peak [$]",
    "Commissions [$]",
    "Return [%]",
    "Buy & Hold Return [%]",
    "Return (Ann.) [%]",
    "Volatility (Ann.) [%]",
    "CAGR [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
    "Alpha [%]",
    "Beta",
    "Max. Drawdown [%]",
    "Avg. Drawdown [%]",
    "Max. Drawdown Duration",
    "Avg. Drawdown Duration",
    "# Trades",
    "Win Rate [%]",
    "Best Trade [%]",
    "Worst Trade [%]",
    "Avg. Trade [%]",
    "Max. Trade Duration",
    "Avg. Trade Duration",
    "Profit Factor",
    "Expectancy [%]",
    "SQN",
    "Kelly Criterion",
)
_NAN: Final = float("nan")


class Stats(Mapping[str, Any]):
    """Read-only mapping of statistic name to value, in ``STAT_NAMES`` order."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def to_series(self) -> pd.Series:
        """The statistics as a pandas Series (object dtype)."""
        return pd.Series(self._values, dtype=object)

    def __repr__(self) -> str:
        width = max(len(k) for k in self._values)
        return "\n".join(f"{k:<{width}}  {_format(v)}" for k, v in self._values.items())


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.5f}" if np.isfinite(value) else str(value)
    return str(value)


def _geometric_mean(returns: FloatArray) -> float:
    growth = np.nan_to_num(returns, nan=0.0) + 1
    if np.any(growth <= 0):
        return 0.0
    if len(growth) == 0:
        return _NAN
    return float(np.exp(np.log(growth).sum() / len(growth)) - 1)


def bar_period(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The typical bar spacing: the median step over the last 100 bars."""
    steps = pd.Series(index[-100:]).diff().dropna()
    return pd.Timedelta(steps.median()) if len(steps) else pd.Timedelta(0)


def _ceil(value: Any, period: pd.Timedelta) -> Any:
    if not isinstance(value, pd.Timedelta) or pd.isna(value):
        return value
    return value.ceil(period.resolution_string)


def drawdown_periods(
    drawdown: FloatArray, index: pd.DatetimeIndex
) -> tuple[pd.TimedeltaIndex, FloatArray]:
    """Duration and depth of each drawdown period (see the module docstring)."""
    ends = np.unique(np.r_[np.flatnonzero(drawdown == 0), len(drawdown) - 1])
    starts, stops = ends[:-1], ends[1:]
    keep = stops > starts + 1
    starts, stops = starts[keep], stops[keep]
    durations = pd.TimedeltaIndex(index[stops] - index[starts])
    if not len(starts):
        return durations, np.empty(0)
    # Depth over [start, stop]: the maximum over [start, stop) and the stop bar itself.
    padded = np.append(drawdown, 0.0)
    bounds = np.column_stack([starts, stops]).ravel()
    inner = np.maximum.reduceat(padded, bounds)[::2]
    return durations, np.maximum(inner, drawdown[stops])


def _exposed_bars(trades: pd.DataFrame, n: int) -> npt.NDArray[np.bool_]:
    """Bars inside any closed trade, entry and exit bars included."""
    steps = np.zeros(n + 1, dtype=np.int64)
    np.add.at(steps, trades["EntryBar"].to_numpy(dtype=np.int64), 1)
    np.add.at(steps, trades["ExitBar"].to_numpy(dtype=np.int64) + 1, -1)
    exposed: npt.NDArray[np.bool_] = np.cumsum(steps[:n]) > 0
    return exposed


def _annualisation(index: pd.DatetimeIndex, period: pd.Timedelta) -> tuple[int, str]:
    days = period.days
    local = index.tz_localize(None) if index.tz is not None else index
    # 1970-01-01 was a Thursday (weekday 3); Saturday and Sunday are 5 and 6.
    weekday = (local.as_unit("ns").asi8 // 86_400_000_000_000 + 3) % 7
    weekend_share = float(np.mean(weekday >= 5))
    per_year = {7: 52, 31: 12, 365: 1}.get(days, 365 if weekend_share > 2 / 7 * 0.6 else 252)
    return per_year, {7: "W", 31: "ME", 365: "YE"}.get(days, "D")


def _return_stats(
    equity: FloatArray, index: pd.DatetimeIndex, period: pd.Timedelta
) -> dict[str, float]:
    per_year, freq = _annualisation(index, period)
    resampled = pd.Series(equity, index=index).resample(freq).last().dropna()
    period_returns = resampled.pct_change().dropna().to_numpy()
    mean = _geometric_mean(period_returns)
    annual = (1 + mean) ** per_year - 1
    variance = float(np.var(period_returns, ddof=1)) if len(period_returns) > 1 else _NAN
    with np.errstate(invalid="ignore"):  # rounding can leave a tiny negative: NaN, as there
        volatility = np.sqrt(
            (variance + (1 + mean) ** 2) ** per_year - (1 + mean) ** (2 * per_year)
        )
    duration = index[-1] - index[0]
    years = (duration.days + duration.seconds / 86400) / 365.25
    with np.errstate(over="ignore"):  # minutes of data annualise to an infinite CAGR
        cagr = ((equity[-1] / equity[0]) ** (1 / years) - 1) * 100 if years else _NAN
    sortino = _NAN
    if len(period_returns):
        with np.errstate(divide="ignore", invalid="ignore"):
            downside = np.sqrt(np.mean(np.clip(period_returns, -np.inf, 0) ** 2))
            sortino = annual / (downside * np.sqrt(per_year))
    return {
        "annual": float(annual),
        "Return (Ann.) [%]": float(annual * 100),
        "Volatility (Ann.) [%]": float(volatility * 100),
        "CAGR [%]": float(cagr),
        "Sortino Ratio": float(sortino),
    }


def _beta(equity: FloatArray, close: FloatArray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        equity_log = np.log(equity[1:] / equity[:-1])
    market_log = np.log(close[1:] / close[:-1])
    if len(equity_log) < 2:
        return _NAN
    # cov(equity, market) / var(market), as np.cov's matrix would give, without
    # stacking both series into a new 2 x n array first. Sums, not np.dot: BLAS
    # threads in every process of an optimisation sweep would fight over the cores.
    market_dev = market_log - market_log.mean()
    equity_dev = equity_log - equity_log.mean()
    return float((equity_dev * market_dev).sum() / (market_dev * market_dev).sum())


def _trade_stats(trades: pd.DataFrame, period: pd.Timedelta) -> dict[str, Any]:
    pnl = trades["PnL"].to_numpy(dtype=np.float64)
    returns = trades["ReturnPct"].to_numpy(dtype=np.float64)
    durations = pd.Series(trades["Duration"])
    n = len(trades)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = float(np.mean(pnl > 0)) if n else _NAN
        losses = abs(returns[returns < 0].sum())
        spread = float(np.std(pnl, ddof=1)) if n > 1 else _NAN
        avg_win = float(np.mean(pnl[pnl > 0])) if (pnl > 0).any() else _NAN
        avg_loss = float(-np.mean(pnl[pnl < 0])) if (pnl < 0).any() else _NAN
        return {
            "# Trades": n,
            "Win Rate [%]": win_rate * 100,
            "Best Trade [%]": float(returns.max()) * 100 if n else _NAN,
            "Worst Trade [%]": float(returns.min()) * 100 if n else _NAN,
            "Avg. Trade [%]": _geometric_mean(returns) * 100,
            "Max. Trade Duration": _ceil(durations.max(), period),
            "Avg. Trade Duration": _ceil(durations.mean(), period),
            "Profit Factor": float(returns[returns > 0].sum()) / (losses or _NAN),
            "Expectancy [%]": float(returns.mean()) * 100 if n else _NAN,
            "SQN": float(np.sqrt(n) * pnl.mean() / (spread or _NAN)) if n else _NAN,
            "Kelly Criterion": win_rate - (1 - win_rate) / (avg_win / avg_loss),
        }


def compute_stats(
    equity: npt.ArrayLike,
    trades: pd.DataFrame,
    index: pd.DatetimeIndex,
    close: npt.ArrayLike,
    warmup: int = 0,
) -> Stats:
    """Every statistic of ``STAT_NAMES`` (see the module docstring).

    ``equity`` has one value per bar of ``index``; ``trades`` is a closed-trade
    table; ``warmup`` is the bar the buy-and-hold comparison starts from.
    """
    equity_array = np.asarray(equity, dtype=np.float64)
    closes = np.asarray(close, dtype=np.float64)
    if len(equity_array) != len(index) or len(closes) != len(index) or len(index) < 1:
        raise ValueError("equity, close and index must have the same, non-zero length")
    period = bar_period(index)
    drawdown = 1 - equity_array / np.maximum.accumulate(equity_array)
    dd_durations, dd_depths = drawdown_periods(drawdown, index)
    exposed = _exposed_bars(trades, len(index))
    returns = _return_stats(equity_array, index, period)
    max_dd = -float(np.nan_to_num(drawdown.max()))
    buy_hold = (closes[-1] - closes[warmup]) / closes[warmup] * 100
    total_return = (equity_array[-1] - equity_array[0]) / equity_array[0] * 100
    beta = _beta(equity_array, closes)
    volatility = returns["Volatility (Ann.) [%]"]
    if len(dd_depths):
        avg_dd = -float(np.mean(dd_depths)) * 100
    else:
        nonzero = drawdown[drawdown != 0]
        avg_dd = -float(np.mean(nonzero)) * 100 if len(nonzero) else _NAN
    durations = pd.Series(dd_durations)
    values: dict[str, Any] = {
        "Start": index[0],
        "End": index[-1],
        "Duration": index[-1] - index[0],
        "Exposure Time [%]": float(exposed.mean() * 100),
        "Equity Final [$]": float(equity_array[-1]),
        "Equity Peak [$]": float(equity_array.max()),
        "Commissions [$]": float(trades["Commission"].sum()),
        "Return [%]": float(total_return),
        "Buy & Hold Return [%]": float(buy_hold),
        "Return (Ann.) [%]": returns["Return (Ann.) [%]"],
        "Volatility (Ann.) [%]": volatility,
        "CAGR [%]": returns["CAGR [%]"],
        "Sharpe Ratio": returns["Return (Ann.) [%]"] / (volatility or _NAN),
        "Sortino Ratio": returns["Sortino Ratio"],
        "Calmar Ratio": returns["annual"] / (-max_dd or _NAN),
        "Alpha [%]": float(total_return - beta * buy_hold),
        "Beta": beta,
        "Max. Drawdown [%]": max_dd * 100,
        "Avg. Drawdown [%]": avg_dd,
        "Max. Drawdown Duration": _ceil(durations.max(), period),
        "Avg. Drawdown Duration": _ceil(durations.mean(), period),
    }
    values.update(_trade_stats(trades, period))
    return Stats(values)
