from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from trademk.backtest.stats import STAT_NAMES, compute_stats, drawdown_periods
from trademk.backtest.trades import TradeLedger, trades_frame


def daily(n: int) -> pd.DatetimeIndex:
    return pd.bdate_range("2024-01-01", periods=n)


def test_drawdown_periods_peak_to_recovery() -> None:
    equity = np.array([100.0, 90.0, 95.0, 100.0, 110.0, 99.0, 88.0, 110.0, 105.0])
    drawdown = 1 - equity / np.maximum.accumulate(equity)
    index = pd.date_range("2024-01-01", periods=len(equity), freq="D")
    durations, depths = drawdown_periods(drawdown, index)
    # 0 -> 3 (depth 10 %), 4 -> 7 (depth 20 %), 7 -> 8 has no bar in between: not counted
    assert list(durations) == [pd.Timedelta(days=3), pd.Timedelta(days=3)]
    np.testing.assert_allclose(depths, [0.10, 0.20])


def test_trade_statistics_by_hand() -> None:
    index = daily(10)
    trades = trades_frame(
        size=[10, -5, 10], entry_bar=[0, 3, 6], exit_bar=[2, 5, 8],
        entry_price=[100.0, 100.0, 100.0], exit_price=[110.0, 90.0, 95.0],
        commission=[0.0, 0.0, 0.0], index=index,
    )  # fmt: skip
    assert trades["PnL"].tolist() == [100.0, 50.0, -50.0]
    np.testing.assert_allclose(trades["ReturnPct"], [0.1, 0.1, -0.05])
    equity = np.array([1000, 1050, 1100, 1100, 1120, 1150, 1150, 1120, 1100, 1100.0])
    stats = compute_stats(equity, trades, index, np.linspace(100, 110, 10), warmup=1)
    assert list(stats) == list(STAT_NAMES)
    assert stats["# Trades"] == 3
    assert stats["Win Rate [%]"] == pytest.approx(200 / 3)
    assert stats["Best Trade [%]"] == pytest.approx(10.0)
    assert stats["Worst Trade [%]"] == pytest.approx(-5.0)
    assert stats["Profit Factor"] == pytest.approx(0.2 / 0.05)
    assert stats["Expectancy [%]"] == pytest.approx(5.0)
    assert stats["Avg. Trade [%]"] == pytest.approx(((1.1 * 1.1 * 0.95) ** (1 / 3) - 1) * 100)
    assert stats["SQN"] == pytest.approx(math.sqrt(3) * (100 / 3) / np.std([100, 50, -50], ddof=1))
    assert stats["Kelly Criterion"] == pytest.approx(2 / 3 - (1 / 3) / (75 / 50))
    assert stats["Exposure Time [%]"] == pytest.approx(90.0)  # bars 0-8 of 10
    assert stats["Return [%]"] == pytest.approx(10.0)
    assert stats["Equity Peak [$]"] == 1150.0
    assert stats["Max. Drawdown [%]"] == pytest.approx(-(1 - 1100 / 1150) * 100)
    assert stats["Buy & Hold Return [%]"] == pytest.approx(
        (110 - (100 + 10 / 9)) / (100 + 10 / 9) * 100
    )
    assert stats["Max. Trade Duration"] == pd.Timedelta(days=4)  # Thursday to Monday
    assert stats["Duration"] == index[-1] - index[0]


def test_annualisation_of_daily_business_bars() -> None:
    index = daily(253)
    growth = np.r_[1.0, np.tile([1.002, 1.0], 126)]
    equity = 1000 * np.cumprod(growth)
    stats = compute_stats(equity, trades_frame([], [], [], [], [], [], index), index, equity, 0)
    # business days: 252 periods a year; returns alternate +0.2 % and 0
    returns = growth[1:] - 1
    mean = 1.002**0.5 - 1
    assert stats["Return (Ann.) [%]"] == pytest.approx(((1 + mean) ** 252 - 1) * 100, rel=1e-9)
    variance = np.var(returns, ddof=1)
    expected_vol = np.sqrt((variance + (1 + mean) ** 2) ** 252 - (1 + mean) ** 504) * 100
    assert stats["Volatility (Ann.) [%]"] == pytest.approx(expected_vol, rel=1e-9)
    assert stats["Sharpe Ratio"] == pytest.approx(stats["Return (Ann.) [%]"] / expected_vol)
    assert math.isnan(stats["Win Rate [%]"]) and stats["# Trades"] == 0
    assert math.isnan(stats["Avg. Drawdown [%]"])


def test_weekend_bars_annualise_over_365_days() -> None:
    index = pd.date_range("2024-01-01", periods=401, freq="D")
    equity = 1000 * np.cumprod(np.r_[1.0, np.tile([1.002, 1.0], 200)])
    stats = compute_stats(equity, trades_frame([], [], [], [], [], [], index), index, equity, 0)
    assert stats["Return (Ann.) [%]"] == pytest.approx((1.002 ** (365 / 2) - 1) * 100, rel=1e-9)


def test_ledger_closes_fifo_and_splits_fees() -> None:
    ledger = TradeLedger()
    ledger.apply(bar=1, signed_qty=10, price=100.0, fee=1.0)
    ledger.apply(bar=2, signed_qty=5, price=110.0, fee=0.5)
    ledger.apply(bar=3, signed_qty=-12, price=120.0, fee=1.2)  # closes 10 then 2 of 5
    ledger.apply(bar=4, signed_qty=-6, price=90.0, fee=0.6)  # closes 3, opens a 3 short
    frame = ledger.frame(daily(6))
    assert frame["Size"].tolist() == [10, 2, 3]
    assert frame["EntryBar"].tolist() == [1, 2, 2] and frame["ExitBar"].tolist() == [3, 3, 4]
    np.testing.assert_allclose(frame["Commission"], [1.0 + 1.0, 0.2 + 0.2, 0.3 + 0.3])
    assert ledger.open_lots[0].size == -3 and ledger.open_lots[0].price == 90.0
