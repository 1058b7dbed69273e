"""Grid optimisation: every parameter combination of a signal strategy on the fast path.

``optimize`` expands the grid, drops combinations the strategy refuses
(``check_params``) or the ``constraint`` rejects, runs the rest over all cores
(one process per core, each holding the data once) and returns a table of
every combination's statistics, best first, plus heatmap data for any two
parameters.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trademk.backtest.api import RunSettings
from trademk.backtest.data import bars_from_frame, load_ohlcv
from trademk.backtest.fast_engine import run_fast
from trademk.backtest.stats import STAT_NAMES, compute_stats
from trademk.backtest.trades import trades_frame
from trademk.strategies.bars import Bars
from trademk.strategies.base import Strategy
from trademk.strategies.registry import get_strategy
from trademk.strategies.signals import Sizing

__all__ = ["OptimizationResult", "optimize"]

Constraint = Callable[[dict[str, Any]], bool]

# Set in each worker process (and in the parent for in-process runs).
_CONTEXT: dict[str, Any] = {}


@dataclass(frozen=True, slots=True, eq=False)
class OptimizationResult:
    """Every combination's statistics (``table``, best first by ``maximize``)."""

    table: pd.DataFrame
    maximize: str
    param_names: tuple[str, ...]

    @property
    def best_params(self) -> dict[str, Any]:
        """The parameters of the best combination."""
        row = self.table.iloc[0]
        return {name: _plain(row[name]) for name in self.param_names}

    @property
    def best_stats(self) -> dict[str, Any]:
        """The statistics of the best combination."""
        row = self.table.iloc[0]
        return {name: row[name] for name in STAT_NAMES}

    def heatmap(self, x: str, y: str, value: str | None = None, agg: str = "max") -> pd.DataFrame:
        """``value`` (default: the objective) by ``y`` (rows) and ``x`` (columns), other
        parameters aggregated with ``agg``; cells without a valid combination are NaN."""
        for name in (x, y):
            if name not in self.param_names:
                raise KeyError(f"{name!r} is not an optimised parameter ({self.param_names})")
        column = value or self.maximize
        numeric = self.table[[x, y, column]].astype({column: np.float64})
        return numeric.pivot_table(index=y, columns=x, values=column, aggfunc=agg)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _combinations(
    cls: type[Strategy],
    grid: Mapping[str, Iterable[Any]],
    fixed: Mapping[str, Any],
    constraint: Constraint | None,
) -> list[dict[str, Any]]:
    if not grid:
        raise ValueError("the optimisation grid is empty: give at least one parameter's values")
    unknown = sorted((set(grid) | set(fixed)) - set(cls.params))
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no parameter(s) {unknown} (it has {sorted(cls.params)})"
        )
    names = list(grid)
    values = [list(grid[name]) for name in names]
    if any(not v for v in values):
        raise ValueError("every parameter in the grid needs at least one value")
    combos = []
    for chosen in itertools.product(*values):
        params = {**fixed, **dict(zip(names, chosen, strict=True))}
        if constraint is not None and not constraint(params):
            continue
        if cls.params_ok(**params):
            combos.append(params)
    if not combos:
        raise ValueError("no parameter combination passes the strategy's checks and the constraint")
    return combos


def _set_context(
    cls: type[Strategy], bars: Bars, index: pd.DatetimeIndex, settings: RunSettings
) -> None:
    _CONTEXT.update(cls=cls, bars=bars, index=index, settings=settings)


def _evaluate(params: dict[str, Any]) -> dict[str, Any]:
    cls: type[Strategy] = _CONTEXT["cls"]
    bars: Bars = _CONTEXT["bars"]
    settings: RunSettings = _CONTEXT["settings"]
    strategy = cls(**params)
    strategy.prepare(bars)
    signals = strategy.prepared_signals
    if signals is None:
        raise ValueError(f"{cls.__name__} has no signals: only signal strategies can be optimised")
    run = run_fast(
        bars.open, bars.close, signals,
        start=strategy.first_decision_bar, cash=settings.cash, commission=settings.commission,
        slippage=settings.slippage, sizing=settings.sizing, lot_size=settings.lot_size,
        fill=settings.fill, close_at_end=settings.close_at_end,
    )  # fmt: skip
    index = _CONTEXT["index"]
    trades = trades_frame(
        run.size, run.entry_bar, run.exit_bar, run.entry_price, run.exit_price,
        run.commission, index,
    )  # fmt: skip
    stats = compute_stats(run.equity, trades, index, bars.close, warmup=strategy.warmup())
    return {**strategy.param_values, **stats}


def _evaluate_chunk(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_evaluate(params) for params in chunk]


def _run_all(combos: list[dict[str, Any]], workers: int, context: tuple[Any, ...]) -> list[Any]:
    if workers <= 1 or len(combos) == 1:
        _set_context(*context)
        return [_evaluate(params) for params in combos]
    size = max(1, math.ceil(len(combos) / (workers * 4)))
    chunks = [combos[i : i + size] for i in range(0, len(combos), size)]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_set_context,
        initargs=context,
    ) as pool:
        return [row for rows in pool.map(_evaluate_chunk, chunks) for row in rows]


def optimize(
    strategy: str | type[Strategy],
    data: pd.DataFrame | str | Path,
    grid: Mapping[str, Iterable[Any]],
    *,
    maximize: str = "Sharpe Ratio",
    constraint: Constraint | None = None,
    workers: int | None = None,
    fixed: Mapping[str, Any] | None = None,
    cash: float = 10_000.0,
    commission: float = 0.0,
    fill: str = "next_open",
    slippage: float = 0.0,
    sizing: Sizing | float | str | None = None,
    lot_size: float = 1.0,
    close_at_end: bool = False,
) -> OptimizationResult:
    """Run every combination of ``grid`` (parameter name -> values) on the fast path.

    ``fixed`` holds parameters kept constant; ``constraint(params)`` returning
    False skips a combination; ``maximize`` is the statistic to sort by (NaN
    last); ``workers`` defaults to every core. The run settings are those of
    ``backtest``.
    """
    if maximize not in STAT_NAMES:
        raise ValueError(f"cannot maximise {maximize!r}: not a statistic ({', '.join(STAT_NAMES)})")
    cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
    if not cls.has_signals() or not cls.uses_default_on_bar():
        raise ValueError(f"{cls.__name__} is not a pure signal strategy: it cannot be optimised")
    combos = _combinations(cls, grid, dict(fixed or {}), constraint)
    settings = RunSettings(
        cash=float(cash), commission=float(commission), fill=fill, slippage=float(slippage),
        sizing=Sizing.parse(sizing), lot_size=float(lot_size), close_at_end=bool(close_at_end),
    )  # fmt: skip
    frame = load_ohlcv(data)
    context = (cls, bars_from_frame(frame), pd.DatetimeIndex(frame.index), settings)
    rows = _run_all(combos, workers or os.cpu_count() or 1, context)
    table = pd.DataFrame(rows)
    order = table[maximize].astype(np.float64).sort_values(ascending=False, na_position="last")
    table = table.loc[order.index].reset_index(drop=True)
    return OptimizationResult(table=table, maximize=maximize, param_names=tuple(cls.params))
