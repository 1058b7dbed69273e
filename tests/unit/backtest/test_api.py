from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trademk.backtest import STAT_NAMES, BacktestResult, backtest
from trademk.domain.market import Bar
from trademk.strategies import ParamError, Strategy, get_strategy


def frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    index = pd.date_range("2023-01-02", periods=n, freq="D")
    return pd.DataFrame(
        {"Open": close, "High": close, "Low": close, "Close": close, "Volume": 1}, index=index
    )


class EveryTenBars(Strategy):
    """A hook-only strategy: long for ten bars, flat for ten."""

    name = "every_ten_test"

    def on_bar(self, bar: Bar) -> None:
        if self.bar_index % 20 == 0:
            self.buy(0.5)
        elif self.bar_index % 20 == 10:
            self.close()


def test_result_shape() -> None:
    result = backtest("sma_cross", frame(), cash=5_000, commission=0.001, fast=5, slow=15)
    assert isinstance(result, BacktestResult)
    assert list(result.stats) == list(STAT_NAMES)
    assert result.engine == "fast" and result.params == {"fast": 5, "slow": 15, "allow_short": True}
    assert list(result.trades.columns[:10]) == [
        "Size", "EntryBar", "ExitBar", "EntryPrice", "ExitPrice", "PnL", "Commission",
        "ReturnPct", "EntryTime", "ExitTime",
    ]  # fmt: skip
    assert result.equity.index.equals(frame().index) and result.equity.iloc[0] == 5_000
    assert set(result.indicators) == {"sma_fast", "sma_slow"}
    assert "Sharpe Ratio" in result.summary()


def test_hook_strategies_run_on_the_event_path_only() -> None:
    result = backtest(EveryTenBars, frame())
    assert result.engine == "event"
    assert result.trades["EntryBar"].tolist()[:2] == [21, 41]  # decided on bars 20, 40
    assert (result.trades["ExitBar"] - result.trades["EntryBar"]).tolist()[:2] == [10, 10]
    with pytest.raises(ValueError, match="cannot run on the fast path"):
        backtest(EveryTenBars, frame(), engine="fast")


def test_strategy_instances_classes_and_names() -> None:
    by_name = backtest("momentum", frame(), lookback=5)
    by_class = backtest(get_strategy("momentum"), frame(), lookback=5)
    by_instance = backtest(get_strategy("momentum")(lookback=5), frame())
    assert by_name.trades.equals(by_class.trades) and by_class.trades.equals(by_instance.trades)
    with pytest.raises(ValueError, match="constructor"):
        backtest(get_strategy("momentum")(), frame(), lookback=5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"commission": 0.5}, ValueError, "commission"),
        ({"cash": -1}, ValueError, "cash"),
        ({"fill": "vwap"}, ValueError, "fill model"),
        ({"engine": "gpu"}, ValueError, "unknown engine"),
        ({"sizing": "lots:x"}, ValueError, "sizing"),
        ({"fast": 50, "slow": 10}, ParamError, "fast < slow"),
        ({"speed": 3}, ParamError, "no parameter 'speed'"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        backtest("sma_cross", frame(), **kwargs)
    with pytest.raises(KeyError, match="unknown strategy"):
        backtest("nope", frame())
