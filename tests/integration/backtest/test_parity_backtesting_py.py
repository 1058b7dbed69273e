"""Parity with backtesting.py 0.6.6: same input, same trades, same statistics.

Each case runs backtesting.py's own engine and ours (fast and event paths) and
compares the whole trade list exactly and every statistic within 1e-6 relative.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest
from backtesting import Strategy as BtStrategy
from backtesting.lib import crossover
from backtesting.test import GOOG, SMA

from trademk.backtest import STAT_NAMES, backtest

REL = 1e-6


class BtSmaCross(BtStrategy):
    fast = 10
    slow = 20
    long_only = False

    def init(self) -> None:
        self.sma1 = self.I(SMA, self.data.Close, self.fast)
        self.sma2 = self.I(SMA, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy(size=self.size)
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            if not self.long_only:
                self.sell(size=self.size)

    size = 1 - 2.220446049250313e-16


def run_reference(**kwargs: Any) -> pd.Series:
    strategy_params = {
        k: kwargs.pop(k) for k in ("fast", "slow", "long_only", "size") if k in kwargs
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(GOOG, BtSmaCross, **kwargs).run(**strategy_params)


def assert_same_value(name: str, ours: Any, theirs: Any) -> None:
    if isinstance(theirs, float | np.floating) and not isinstance(theirs, pd.Timedelta):
        if math.isnan(theirs):
            assert math.isnan(ours), f"{name}: {ours} != NaN"
        else:
            assert ours == pytest.approx(theirs, rel=REL, abs=1e-12), name
    else:
        assert ours == theirs, f"{name}: {ours!r} != {theirs!r}"


def assert_parity(result: Any, reference: pd.Series) -> None:
    theirs = reference["_trades"]
    ours = result.trades
    assert len(ours) == len(theirs)
    for column in (
        "Size",
        "EntryBar",
        "ExitBar",
        "EntryPrice",
        "ExitPrice",
        "EntryTime",
        "ExitTime",
    ):
        assert list(ours[column]) == list(theirs[column]), column
    for column in ("PnL", "Commission", "ReturnPct"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=REL, atol=1e-9)
    for name in STAT_NAMES:
        if name in reference.index:
            assert_same_value(name, result.stats[name], reference[name])
    np.testing.assert_allclose(
        result.equity.to_numpy(), reference["_equity_curve"]["Equity"], rtol=1e-9
    )


@pytest.mark.parametrize("engine", ["fast", "event"])
def test_goog_sma_cross_matches_backtesting_py_headline_figures(engine: str) -> None:
    result = backtest(
        "sma_cross", data=GOOG, cash=10_000, commission=0.002, engine=engine,
        close_at_end=False, fast=10, slow=20,
    )  # fmt: skip
    stats = result.stats
    assert stats["Equity Final [$]"] == pytest.approx(56263.52, abs=0.005)
    assert stats["Return [%]"] == pytest.approx(462.64, abs=0.005)
    assert stats["# Trades"] == 93
    assert stats["Win Rate [%]"] == pytest.approx(52.69, abs=0.005)
    assert stats["Sharpe Ratio"] == pytest.approx(0.6007, abs=0.00005)
    assert stats["Max. Drawdown [%]"] == pytest.approx(-33.93, abs=0.005)
    assert_parity(result, run_reference(cash=10_000, commission=0.002, fast=10, slow=20))


@pytest.mark.parametrize("engine", ["fast", "event"])
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({"allow_short": False}, {"long_only": True}),
        ({"sizing": 0.5}, {"size": 0.5}),
        ({"sizing": 20}, {"size": 20}),
        ({"fast": 5, "slow": 60, "commission": 0.0}, {"fast": 5, "slow": 60, "commission": 0.0}),
    ],
    ids=["long-only", "half-equity", "fixed-units", "no-commission"],
)
def test_variants_match_backtesting_py(engine: str, ours: dict, theirs: dict) -> None:
    base = {"cash": 10_000, "commission": 0.002}
    result = backtest("sma_cross", data=GOOG, engine=engine, **{**base, **ours})
    assert_parity(result, run_reference(**{**base, **theirs}))


def test_same_bar_close_fills_match_trade_on_close() -> None:
    """fill='close' trades at the decision bar's close, as trade_on_close=True does."""
    reference = run_reference(cash=10_000, commission=0.002, trade_on_close=True)
    for engine in ("fast", "event"):
        result = backtest(
            "sma_cross", GOOG, cash=10_000, commission=0.002, fill="close", engine=engine
        )
        theirs = reference["_trades"]
        for column in ("Size", "EntryBar", "ExitBar", "EntryPrice", "ExitPrice"):
            assert list(result.trades[column]) == list(theirs[column]), column
        np.testing.assert_allclose(result.trades["PnL"], theirs["PnL"], rtol=REL)
