from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trademk.backtest import backtest
from trademk.backtest.optimize import optimize


def frame(n: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    close = 30 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    index = pd.date_range("2023-01-01", periods=n, freq="h")
    return pd.DataFrame({"Open": close, "High": close, "Low": close, "Close": close}, index=index)


@pytest.mark.parametrize("workers", [1, 2])
def test_grid_sweep_ranks_every_valid_combination(workers: int) -> None:
    data = frame()
    result = optimize(
        "sma_cross", data, {"fast": [2, 5, 10], "slow": [5, 10, 20]},
        maximize="Return [%]", workers=workers, commission=0.001,
        constraint=lambda p: p["slow"] - p["fast"] >= 3,
    )  # fmt: skip
    combos = {(r.fast, r.slow) for r in result.table.itertuples()}
    # fast < slow (the strategy's rule) and slow - fast >= 3 (the constraint)
    assert combos == {(2, 5), (2, 10), (2, 20), (5, 10), (5, 20), (10, 20)}
    returns = result.table["Return [%]"].to_numpy()
    assert np.all(np.diff(returns) <= 0)
    best = result.best_params
    single = backtest("sma_cross", data, commission=0.001, fast=best["fast"], slow=best["slow"])
    assert single.stats["Return [%]"] == pytest.approx(returns[0])
    heat = result.heatmap("fast", "slow")
    assert heat.shape == (3, 3) and np.isnan(heat.loc[5, 10])
    assert heat.loc[20, 2] == pytest.approx(
        result.table.set_index(["fast", "slow"]).loc[(2, 20), "Return [%]"]
    )


def test_bad_grids_are_refused() -> None:
    with pytest.raises(ValueError, match="no parameter"):
        optimize("sma_cross", frame(), {"speed": [1]})
    with pytest.raises(ValueError, match="no parameter combination"):
        optimize("sma_cross", frame(), {"fast": [30], "slow": [10]})
    with pytest.raises(ValueError, match="not a statistic"):
        optimize("sma_cross", frame(), {"fast": [3]}, maximize="Profit")
