"""``backtest()``: the one entry point for notebooks, scripts and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from trademk.backtest.data import bars_from_frame, load_ohlcv
from trademk.backtest.fast_engine import FILL_MODELS, run_fast
from trademk.backtest.result import BacktestResult, OpenPosition
from trademk.backtest.stats import compute_stats
from trademk.backtest.trades import trades_frame
from trademk.strategies.bars import Bars
from trademk.strategies.base import Strategy
from trademk.strategies.registry import get_strategy
from trademk.strategies.signals import Sizing

__all__ = ["ENGINES", "RunSettings", "backtest", "make_strategy"]

ENGINES: Final = ("auto", "fast", "event")


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a run executes (everything except the strategy and the data)."""

    cash: float = 10_000.0
    commission: float = 0.0
    fill: str = "next_open"
    slippage: float = 0.0
    sizing: Sizing = field(default_factory=Sizing.all_in)
    lot_size: float = 1.0
    close_at_end: bool = False
    symbol: str = "ASSET"

    def __post_init__(self) -> None:
        if not np.isfinite(self.cash) or self.cash <= 0:
            raise ValueError(f"cash must be a positive amount, got {self.cash!r}")
        if not 0 <= self.commission < 0.1:
            raise ValueError(
                f"commission is a fraction of traded value in [0, 0.1), got {self.commission!r}"
            )
        if not 0 <= self.slippage < 0.1:
            raise ValueError(f"slippage is a fraction of price in [0, 0.1), got {self.slippage!r}")
        if self.fill not in FILL_MODELS:
            raise ValueError(f"unknown fill model {self.fill!r}: use one of {FILL_MODELS}")
        if not self.lot_size > 0:
            raise ValueError(f"lot_size must be positive, got {self.lot_size!r}")

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain values (for the result and reports)."""
        return {
            "cash": self.cash,
            "commission": self.commission,
            "fill": self.fill,
            "slippage": self.slippage,
            "sizing": f"{self.sizing.kind}:{self.sizing.value:g}",
            "lot_size": self.lot_size,
            "close_at_end": self.close_at_end,
            "symbol": self.symbol,
        }


def make_strategy(strategy: str | type[Strategy] | Strategy, params: dict[str, Any]) -> Strategy:
    """A strategy instance from a registered name, a class or an instance (no params then)."""
    if isinstance(strategy, Strategy):
        if params:
            raise ValueError("pass parameters to the strategy's constructor, not to backtest()")
        return strategy
    cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"strategy must be a name, a Strategy subclass or instance, got {cls!r}")
    return cls(**params)


def _resolve_engine(engine: str, strategy: Strategy) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {ENGINES}")
    if engine == "auto":
        return "fast" if strategy.prepared_signals is not None else "event"
    if engine == "fast" and strategy.prepared_signals is None:
        raise ValueError(
            f"{type(strategy).__name__} decides in on_bar, not with signals: it cannot run on "
            "the fast path; use engine='event'"
        )
    if engine == "fast" and not type(strategy).uses_default_on_bar():
        raise ValueError(
            f"{type(strategy).__name__} overrides on_bar: the fast path would ignore it; "
            "use engine='event'"
        )
    return engine


def _run_fast(
    strategy: Strategy, bars: Bars, index: pd.DatetimeIndex, settings: RunSettings
) -> tuple[np.ndarray, pd.DataFrame, OpenPosition | None]:
    signals = strategy.prepared_signals
    assert signals is not None  # checked by _resolve_engine
    run = run_fast(
        bars.open,
        bars.close,
        signals,
        start=strategy.first_decision_bar,
        cash=settings.cash,
        commission=settings.commission,
        slippage=settings.slippage,
        sizing=settings.sizing,
        lot_size=settings.lot_size,
        fill=settings.fill,
        close_at_end=settings.close_at_end,
    )
    trades = trades_frame(
        run.size,
        run.entry_bar,
        run.exit_bar,
        run.entry_price,
        run.exit_price,
        run.commission,
        index,
    )
    still_open = (
        OpenPosition(run.open_size, run.open_entry_price, run.open_entry_bar)
        if run.open_size
        else None
    )
    return run.equity, trades, still_open


def backtest(
    strategy: str | type[Strategy] | Strategy,
    data: pd.DataFrame | str | Path,
    *,
    cash: float = 10_000.0,
    commission: float = 0.0,
    engine: str = "auto",
    fill: str = "next_open",
    slippage: float = 0.0,
    sizing: Sizing | float | str | None = None,
    lot_size: float = 1.0,
    close_at_end: bool = False,
    symbol: str = "ASSET",
    **params: Any,
) -> BacktestResult:
    """Run ``strategy`` over ``data`` and return its statistics, trades and equity.

    ``strategy`` is a registered name (``"sma_cross"``), a ``Strategy``
    subclass (``params`` are its parameters) or an instance. ``data`` is an
    OHLCV DataFrame with a DatetimeIndex, or a CSV/Parquet path
    (``trademk.backtest.data``). ``commission`` is a fraction of traded value
    charged on every fill; ``fill`` is ``"next_open"`` (default) or
    ``"close"``; ``slippage`` a fraction of price against us on every fill;
    ``sizing`` the entry size (default all-in, see ``Sizing.parse``);
    ``lot_size`` the unit increment (1 = whole units); ``close_at_end`` closes
    a position still open at the last close. ``engine`` is ``"fast"`` (numba,
    signal strategies), ``"event"`` (the StrategyRunner → RiskEngine → OMS →
    PaperVenue chain under a simulated clock) or ``"auto"`` (fast when
    possible).
    """
    settings = RunSettings(
        cash=float(cash),
        commission=float(commission),
        fill=fill,
        slippage=float(slippage),
        sizing=Sizing.parse(sizing),
        lot_size=float(lot_size),
        close_at_end=bool(close_at_end),
        symbol=symbol,
    )
    frame = load_ohlcv(data)
    instance = make_strategy(strategy, params)
    instance.sizing = settings.sizing
    bars = bars_from_frame(frame, symbol=symbol)
    instance.prepare(bars)
    chosen = _resolve_engine(engine, instance)
    index = pd.DatetimeIndex(frame.index)
    if chosen == "fast":
        equity, trades, still_open = _run_fast(instance, bars, index, settings)
    else:
        from trademk.backtest.event_engine import run_event

        equity, trades, still_open = run_event(instance, bars, index, settings)
    stats = compute_stats(equity, trades, index, bars.close, warmup=instance.warmup())
    return BacktestResult(
        stats=stats,
        trades=trades,
        equity=pd.Series(equity, index=index, name="Equity"),
        data=frame,
        strategy=type(instance).name or type(instance).__name__,
        params=instance.param_values,
        engine=chosen,
        indicators=instance.all_indicators,
        open_position=still_open,
        settings=settings.as_dict(),
    )
