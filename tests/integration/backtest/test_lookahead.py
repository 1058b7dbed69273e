"""No strategy reads the future: changing bars after t changes no decision made up to t.

For every built-in strategy, the bars after a cut-off are replaced by a very
different path; indicators, signals, trades entered and equity up to the
cut-off must be identical, on both engines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trademk.backtest import backtest
from trademk.backtest.data import bars_from_frame
from trademk.strategies import get_strategy, strategy_names


def synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    index = pd.date_range("2021-01-01", periods=n, freq="h")
    return pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": 1.0}, index=index
    )


def with_different_future(frame: pd.DataFrame, cut: int) -> pd.DataFrame:
    """Bars after ``cut`` replaced by an upside-down, rescaled path."""
    changed = frame.copy()
    tail = changed.iloc[cut + 1 :]
    flipped = 2 * frame["Close"].iloc[cut] - tail[["Open", "High", "Low", "Close"]] * 1.3
    flipped = flipped.clip(lower=1.0)
    changed.loc[tail.index, ["Open", "Close"]] = flipped[["Open", "Close"]].to_numpy()
    changed.loc[tail.index, "High"] = flipped.max(axis=1).to_numpy()
    changed.loc[tail.index, "Low"] = flipped.min(axis=1).to_numpy()
    return changed


CUT = 600


@pytest.mark.parametrize("name", strategy_names())
def test_indicators_and_signals_up_to_t_ignore_later_bars(name: str) -> None:
    original = synthetic(1000, seed=7)
    changed = with_different_future(original, CUT)
    assert not np.allclose(original["Close"].iloc[CUT + 1 :], changed["Close"].iloc[CUT + 1 :])
    cls = get_strategy(name)
    results = []
    for frame in (original, changed):
        strategy = cls()
        strategy.prepare(bars_from_frame(frame))
        results.append(strategy)
    first, second = results
    for key, values in first.all_indicators.items():
        np.testing.assert_array_equal(values[: CUT + 1], second.all_indicators[key][: CUT + 1])
    for column in ("long_entries", "long_exits", "short_entries", "short_exits"):
        a = getattr(first.prepared_signals, column)
        b = getattr(second.prepared_signals, column)
        np.testing.assert_array_equal(a[: CUT + 1], b[: CUT + 1])


@pytest.mark.parametrize("engine", ["fast", "event"])
@pytest.mark.parametrize("name", strategy_names())
def test_trades_and_equity_up_to_t_ignore_later_bars(name: str, engine: str) -> None:
    original = synthetic(1000, seed=11)
    changed = with_different_future(original, CUT)
    runs = [
        backtest(name, frame, cash=100_000, commission=0.001, engine=engine)
        for frame in (original, changed)
    ]
    first, second = runs
    # Entries up to CUT were decided on bars before CUT and filled at opens up to CUT,
    # all of which the change left alone.
    entered = [run.trades[run.trades["EntryBar"] <= CUT] for run in runs]
    assert len(entered[0]) > 0
    pd.testing.assert_frame_equal(
        entered[0][["Size", "EntryBar", "EntryPrice"]].reset_index(drop=True),
        entered[1][["Size", "EntryBar", "EntryPrice"]].reset_index(drop=True),
    )
    closed = [run.trades[run.trades["ExitBar"] <= CUT] for run in runs]
    pd.testing.assert_frame_equal(
        closed[0].reset_index(drop=True), closed[1].reset_index(drop=True)
    )
    np.testing.assert_array_equal(
        first.equity.to_numpy()[: CUT + 1], second.equity.to_numpy()[: CUT + 1]
    )
