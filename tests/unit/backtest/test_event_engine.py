from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from trademk.backtest import backtest
from trademk.backtest.api import RunSettings
from trademk.backtest.data import bars_from_frame
from trademk.backtest.event_engine import EventBacktest
from trademk.domain.fills import Fill
from trademk.domain.market import Bar
from trademk.domain.risk import RiskLimits
from trademk.strategies import Sizing, Strategy, get_strategy, strategy_names


def synthetic(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    index = pd.date_range("2022-01-03", periods=n, freq="15min", tz="UTC")
    return pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": 1.0}, index=index
    )


SETTINGS = [
    {"commission": 0.001},
    {"commission": 0.002, "slippage": 0.0005},
    {"fill": "close", "commission": 0.001},
    {"close_at_end": True, "sizing": 0.5},
    {"sizing": "cash:2000", "lot_size": 0.01},
]


@pytest.mark.parametrize(
    "settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items())
)
@pytest.mark.parametrize("name", strategy_names())
def test_event_path_trades_exactly_as_the_fast_path(name: str, settings: dict) -> None:
    frame = synthetic()
    fast = backtest(name, frame, cash=10_000, engine="fast", **settings)
    event = backtest(name, frame, cash=10_000, engine="event", **settings)
    assert len(fast.trades) > 3
    for column in ("Size", "EntryBar", "ExitBar"):
        assert fast.trades[column].tolist() == event.trades[column].tolist(), column
    for column in ("EntryPrice", "ExitPrice", "PnL", "Commission", "ReturnPct"):
        np.testing.assert_allclose(fast.trades[column], event.trades[column], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.equity, event.equity, rtol=1e-9)
    for key, value in fast.stats.items():
        if isinstance(value, float):
            assert event.stats[key] == pytest.approx(value, rel=1e-6, nan_ok=True), key
        else:
            assert event.stats[key] == value, key
    assert fast.open_position == event.open_position or (
        fast.open_position.size == event.open_position.size  # type: ignore[union-attr]
    )


class DipBuyer(Strategy):
    """Hook strategy: rests a limit buy 1 % under the close, then a stop 2 % below the fill."""

    name = "dip_buyer_test"

    def __init__(self) -> None:
        super().__init__()
        self.fills: list[Fill] = []
        self.bars_seen = 0

    def on_bar(self, bar: Bar) -> None:
        self.bars_seen += 1
        if self.position == 0 and not self.fills:
            self.buy(Sizing.units(10), limit=round(bar.close * 0.99, 2))

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        if len(self.fills) == 1:
            self.sell(Sizing.units(10), stop=round(float(fill.price) * 0.98, 2))


async def test_hook_strategy_limit_and_stop_orders_fill_at_the_venue() -> None:
    frame = synthetic()
    bars = bars_from_frame(frame, symbol="ASSET")
    strategy = DipBuyer()
    strategy.prepare(bars)
    run = await EventBacktest(strategy, bars, RunSettings(cash=10_000)).run()
    assert strategy.bars_seen == len(bars) - 1  # every bar after the (empty) warm-up
    assert len(strategy.fills) == 2
    buy, sell = strategy.fills
    limit = round(float(frame["Close"].iloc[1]) * 0.99, 2)  # placed on the first bar seen
    entry_bar = run.ledger.entry_bar[0]
    # a resting buy fills at its limit once a print goes below it, or at a lower open
    assert float(buy.price) <= limit
    assert frame["Low"].iloc[entry_bar] < limit
    assert float(sell.price) <= float(buy.price) * 0.98 + 1e-9
    assert run.ledger.size == [10.0]
    assert run.counters["orders"] == 2 and run.counters["denied"] == 0


async def test_risk_denials_are_counted_and_nothing_trades() -> None:
    frame = synthetic()
    bars = bars_from_frame(frame, symbol="ASSET")
    strategy = get_strategy("sma_cross")()
    strategy.prepare(bars)
    limits = RiskLimits(max_order_qty_stock=Decimal(5), enforce_market_hours=False)
    run = await EventBacktest(strategy, bars, RunSettings(cash=10_000), risk_limits=limits).run()
    assert run.counters["denied"] == run.counters["orders"] > 0
    assert run.ledger.size == [] and not run.ledger.open_lots
    assert np.all(run.equity == 10_000.0)


def test_event_engine_runs_inside_a_running_event_loop() -> None:
    import asyncio

    async def inside() -> float:
        result = backtest("sma_cross", synthetic(200), engine="event")
        return float(result.stats["Equity Final [$]"])

    assert asyncio.run(inside()) > 0
