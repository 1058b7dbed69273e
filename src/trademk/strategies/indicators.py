"""Vectorised indicators over whole price arrays.

Every function here is causal: the value at bar ``t`` depends on bars ``<= t``
only, so an indicator computed once over the whole history equals, at every
bar, the one a live strategy computes over the bars it has seen (the look-ahead
test holds this). Values before an indicator has enough bars are NaN.

Inputs are 1-d float arrays (or anything ``numpy.asarray`` turns into one);
outputs are new float64 arrays of the same length.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import talib

__all__ = [
    "crossover",
    "crossunder",
    "ema",
    "first_valid_index",
    "highest",
    "lowest",
    "rate_of_change",
    "rsi",
    "shift",
    "sma",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _as_float(values: Any) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"an indicator needs a 1-d array, got shape {array.shape}")
    return array


def _check_window(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"an indicator window must be a positive integer, got {n!r}")
    return int(n)


def sma(values: Any, n: int) -> FloatArray:
    """Simple moving average of the last ``n`` values (NaN for the first ``n - 1``).

    Computed as pandas' rolling mean, the same arithmetic backtesting.py's
    ``SMA`` helper uses, so crossings of two averages agree bar for bar.
    """
    window = _check_window(n)
    result: FloatArray = pd.Series(_as_float(values)).rolling(window).mean().to_numpy()
    return result


def ema(values: Any, n: int) -> FloatArray:
    """Exponential moving average with ``alpha = 2 / (n + 1)``, seeded by the first value.

    The first ``n - 1`` values are NaN so that it warms up like ``sma``.
    """
    window = _check_window(n)
    series = pd.Series(_as_float(values))
    result: FloatArray = series.ewm(span=window, adjust=False).mean().to_numpy(copy=True)
    result[: window - 1] = np.nan
    return result


def rsi(values: Any, n: int = 14) -> FloatArray:
    """Wilder's relative strength index over ``n`` bars, 0..100 (TA-Lib's RSI)."""
    window = _check_window(n)
    if window < 2:
        raise ValueError(f"an RSI needs a window of at least 2 bars, got {n}")
    result: FloatArray = talib.RSI(_as_float(values), timeperiod=window)
    return result


def highest(values: Any, n: int) -> FloatArray:
    """The maximum of the last ``n`` values, the current one included."""
    window = _check_window(n)
    result: FloatArray = pd.Series(_as_float(values)).rolling(window).max().to_numpy()
    return result


def lowest(values: Any, n: int) -> FloatArray:
    """The minimum of the last ``n`` values, the current one included."""
    window = _check_window(n)
    result: FloatArray = pd.Series(_as_float(values)).rolling(window).min().to_numpy()
    return result


def shift(values: Any, n: int = 1) -> FloatArray:
    """``values`` delayed by ``n`` bars (the first ``n`` are NaN): bar t sees bar t - n."""
    array = _as_float(values)
    result = np.full_like(array, np.nan)
    if n < len(array):
        result[n:] = array[: len(array) - n]
    return result


def rate_of_change(values: Any, n: int) -> FloatArray:
    """``values[t] / values[t - n] - 1``: the return over the last ``n`` bars."""
    window = _check_window(n)
    array = _as_float(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return array / shift(array, window) - 1.0


def crossover(a: Any, b: Any) -> BoolArray:
    """True at bar t when ``a`` was strictly below ``b`` at t - 1 and is strictly above at t.

    NaN on either side is never a crossing. This is the rule of backtesting.py's
    ``lib.crossover``, evaluated at every bar at once.
    """
    first, second = _as_float(a), _as_float(b)
    if first.shape != second.shape:
        raise ValueError(
            f"crossover of arrays of different lengths: {first.shape} vs {second.shape}"
        )
    result = np.zeros(first.shape, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        result[1:] = (first[:-1] < second[:-1]) & (first[1:] > second[1:])
    return result


def crossunder(a: Any, b: Any) -> BoolArray:
    """True at bar t when ``a`` crossed strictly below ``b`` (``crossover(b, a)``)."""
    return crossover(b, a)


def first_valid_index(values: Any) -> int:
    """Index of the first non-NaN value (0 when there is none), the indicator's warm-up.

    Like backtesting.py, an indicator that is NaN everywhere counts as warm at bar 0.
    """
    array = _as_float(values)
    if array.size == 0:
        return 0
    return int(np.isnan(array).argmin())
