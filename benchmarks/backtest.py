"""Backtest speed: our event and fast paths against backtesting.py, backtrader and vectorbt.

One run per engine on the same synthetic 1-minute bars with the same strategy
(SMA cross, reversing long/short, all-in, next-bar-open fills, commission on
both sides), then a 100-combination grid sweep (ours on every core against
vectorbt's column-vectorised equivalent). vectorbt runs twice: the simulation
with its trade count and final value only, and with its statistics table
(``Portfolio.stats()``), which is what ours and backtesting.py's runs hand back.
Prints bars/s and the ratios to backtesting.py; not part of the test suite.

    .venv/bin/python benchmarks/backtest.py --bars 200000 1000000
    .venv/bin/python benchmarks/backtest.py --bars 200000 --skip backtrader --sweep-bars 200000

Needs the ``bench`` extra (backtesting, backtrader, vectorbt).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from common import describe_machine
from trademk.backtest import backtest
from trademk.backtest.optimize import optimize

FAST_WINDOWS = list(range(5, 55, 5))
SLOW_WINDOWS = list(range(60, 160, 10))


def synthetic_minutes(n: int, seed: int = 42) -> pd.DataFrame:
    """Geometric random walk at 1-minute spacing with realistic OHLC."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.0007, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.0001, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.0005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.0005, n))
    index = pd.date_range("2020-01-01", periods=n, freq="1min")
    volume = rng.integers(100, 10_000, n).astype(float)
    return pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume}, index=index
    )


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def run_ours(df: pd.DataFrame, engine: str, args: argparse.Namespace) -> tuple[int, float]:
    result = backtest(
        "sma_cross", df, cash=args.cash, commission=args.commission, engine=engine,
        fast=args.fast, slow=args.slow,
    )  # fmt: skip
    return int(result.stats["# Trades"]), float(result.stats["Equity Final [$]"])


def run_backtesting_py(df: pd.DataFrame, args: argparse.Namespace) -> tuple[int, float]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):
        fast = args.fast
        slow = args.slow

        def init(self) -> None:
            self.sma1 = self.I(SMA, self.data.Close, self.fast)
            self.sma2 = self.I(SMA, self.data.Close, self.slow)

        def next(self) -> None:
            if crossover(self.sma1, self.sma2):
                self.position.close()
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()
                self.sell()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(df, SmaCross, cash=args.cash, commission=args.commission).run()
    return int(stats["# Trades"]), float(stats["Equity Final [$]"])


def run_backtrader(df: pd.DataFrame, args: argparse.Namespace) -> tuple[int, float]:
    import backtrader as bt

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        params = (("fast", args.fast), ("slow", args.slow))

        def __init__(self) -> None:
            fast = bt.ind.SMA(period=self.p.fast)
            slow = bt.ind.SMA(period=self.p.slow)
            self.cross = bt.ind.CrossOver(fast, slow)
            self.trades = 0

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                self.trades += 1

        def next(self) -> None:
            if self.cross > 0:
                self.order_target_percent(target=0.99)
            elif self.cross < 0:
                self.order_target_percent(target=-0.99)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(args.cash)
    cerebro.broker.setcommission(commission=args.commission)
    strategy = cerebro.run()[0]
    return strategy.trades, float(cerebro.broker.getvalue())


def vectorbt_portfolio(df: pd.DataFrame, fast: Any, slow: Any, args: argparse.Namespace) -> Any:
    """vectorbt's equivalent: MA crossings (for every fast x slow pair), executed at the
    next bar's open, reversing long/short, all-in, fees on both sides."""
    import vectorbt as vbt

    close = df["Close"]
    fast_ma = vbt.MA.run(close, window=fast, short_name="fast").ma.to_numpy().reshape(len(df), -1)
    slow_ma = vbt.MA.run(close, window=slow, short_name="slow").ma.to_numpy().reshape(len(df), -1)
    # every fast window against every slow window: columns (f0,s0), (f0,s1), ...
    fast_ma, slow_ma = (
        np.repeat(fast_ma, slow_ma.shape[1], axis=1),
        np.tile(slow_ma, (1, fast_ma.shape[1])),
    )
    above = np.zeros_like(fast_ma, dtype=bool)
    below = np.zeros_like(fast_ma, dtype=bool)
    above[2:] = (fast_ma[:-2] < slow_ma[:-2]) & (fast_ma[1:-1] > slow_ma[1:-1])
    below[2:] = (fast_ma[:-2] > slow_ma[:-2]) & (fast_ma[1:-1] < slow_ma[1:-1])
    open_ = np.broadcast_to(df["Open"].to_numpy()[:, None], above.shape)
    return vbt.Portfolio.from_signals(
        np.broadcast_to(close.to_numpy()[:, None], above.shape), entries=above,
        short_entries=below, price=open_, fees=args.commission, init_cash=args.cash,
        size=np.inf, freq="1min",
    )  # fmt: skip


def run_vectorbt(df: pd.DataFrame, args: argparse.Namespace) -> tuple[int, float]:
    """The simulation, its trade count and final value only."""
    portfolio = vectorbt_portfolio(df, args.fast, args.slow, args)
    return int(portfolio.trades.count().iloc[0]), float(portfolio.final_value().iloc[0])


def run_vectorbt_stats(df: pd.DataFrame, args: argparse.Namespace) -> tuple[int, float]:
    """The simulation and its statistics table: what ``backtest()`` hands back too."""
    stats = vectorbt_portfolio(df, args.fast, args.slow, args).stats()
    return int(stats["Total Trades"]), float(stats["End Value"])


ENGINES: dict[str, Callable[[pd.DataFrame, argparse.Namespace], tuple[int, float]]] = {
    "trademk event": lambda df, a: run_ours(df, "event", a),
    "trademk fast": lambda df, a: run_ours(df, "fast", a),
    "backtesting.py": run_backtesting_py,
    "backtrader": run_backtrader,
    "vectorbt": run_vectorbt,
    "vectorbt +stats": run_vectorbt_stats,
}


def warm_up(args: argparse.Namespace) -> None:
    """Compile numba code (ours and vectorbt's) outside the timings."""
    small = synthetic_minutes(2_000, seed=1)
    run_ours(small, "fast", args)
    run_ours(small, "event", args)
    if "vectorbt" not in args.skip:
        run_vectorbt_stats(small, args)
        vectorbt_portfolio(small, FAST_WINDOWS[:2], SLOW_WINDOWS[:2], args).total_return()


def single_runs(n: int, args: argparse.Namespace) -> None:
    df = synthetic_minutes(n)
    print(f"\n== {n:,} bars, sma_cross fast={args.fast} slow={args.slow}, "
          f"commission={args.commission} ==")  # fmt: skip
    rows = []
    for name, run in ENGINES.items():
        if name.split()[0] in args.skip or name in args.skip:
            continue
        seconds, (trades, final) = timed(lambda run=run: run(df, args))
        rows.append((name, seconds, n / seconds, trades, final))
    reference = next((r[2] for r in rows if r[0] == "backtesting.py"), None)
    print(f"{'engine':<16}{'seconds':>10}{'bars/s':>14}{'x bt.py':>9}{'trades':>8}{'final $':>14}")
    for name, seconds, rate, trades, final in rows:
        ratio = f"{rate / reference:8.2f}x" if reference else "      --"
        print(f"{name:<16}{seconds:>10.3f}{rate:>14,.0f}{ratio}{trades:>8}{final:>14,.2f}")


def sweep(n: int, args: argparse.Namespace) -> None:
    df = synthetic_minutes(n)
    grid = {"fast": FAST_WINDOWS, "slow": SLOW_WINDOWS}
    combos = len(FAST_WINDOWS) * len(SLOW_WINDOWS)
    print(f"\n== sweep: {combos} combinations on {n:,} bars ({os.cpu_count()} cores) ==")
    ours, result = timed(
        lambda: optimize(
            "sma_cross", df, grid, maximize="Return [%]", commission=args.commission, cash=args.cash
        )
    )
    print(f"trademk fast sweep  {ours:8.2f} s  best {result.best_params} "
          f"return {result.table['Return [%]'].iloc[0]:.2f} %")  # fmt: skip
    if "vectorbt" in args.skip:
        return
    theirs, returns = timed(
        lambda: vectorbt_portfolio(df, FAST_WINDOWS, SLOW_WINDOWS, args).total_return()
    )
    print(f"vectorbt sweep      {theirs:8.2f} s  best return {returns.max() * 100:.2f} %")
    print(f"ratio (vectorbt / ours): {theirs / ours:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--sweep-bars", type=int, nargs="*", default=[200_000])
    parser.add_argument("--fast", type=int, default=10)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--cash", type=float, default=1_000_000.0)
    parser.add_argument("--commission", type=float, default=0.0002)
    parser.add_argument("--skip", nargs="*", default=[], help="engines to leave out")
    args = parser.parse_args()
    print(describe_machine().describe())
    warm_up(args)
    for n in args.bars:
        single_runs(n, args)
    for n in args.sweep_bars:
        sweep(n, args)


if __name__ == "__main__":
    main()
