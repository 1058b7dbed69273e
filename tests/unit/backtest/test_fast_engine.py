from __future__ import annotations

import numpy as np
import pytest

from trademk.backtest.fast_engine import run_fast
from trademk.strategies.signals import Signals, Sizing

OPEN = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
CLOSE = np.array([10.5, 11.5, 12.5, 13.5, 14.5, 15.5])


def long_then_exit() -> Signals:
    return Signals.build(6, long_entries=[0, 1, 0, 0, 0, 0], long_exits=[0, 0, 0, 1, 0, 0])


def test_next_open_fill_sizing_and_commission_by_hand() -> None:
    run = run_fast(OPEN, CLOSE, long_then_exit(), start=0, cash=1000.0, commission=0.01)
    # decided on bar 1, bought at bar 2's open: floor(1000 / (12 * 1.01)) = 82 units
    assert run.size.tolist() == [82.0]
    assert (run.entry_bar.tolist(), run.exit_bar.tolist()) == ([2], [4])
    assert (run.entry_price.tolist(), run.exit_price.tolist()) == ([12.0], [14.0])
    assert run.commission[0] == pytest.approx(82 * 12 * 0.01 + 82 * 14 * 0.01)
    cash_in_trade = 1000 - 82 * 12 * 0.01
    assert run.equity[2] == pytest.approx(cash_in_trade + 82 * (12.5 - 12))
    final = cash_in_trade + 82 * (14 - 12) - 82 * 14 * 0.01
    assert run.equity[-1] == pytest.approx(final)
    assert run.equity[:2].tolist() == [1000.0, 1000.0]
    assert run.open_size == 0


def test_same_bar_close_fill() -> None:
    run = run_fast(OPEN, CLOSE, long_then_exit(), start=0, cash=1000.0, fill="close")
    assert (run.entry_bar.tolist(), run.exit_bar.tolist()) == ([1], [3])
    assert (run.entry_price.tolist(), run.exit_price.tolist()) == ([11.5], [13.5])
    assert run.size.tolist() == [86.0]  # floor(1000 / 11.5)


def test_slippage_moves_both_fills_against_us() -> None:
    run = run_fast(OPEN, CLOSE, long_then_exit(), start=0, cash=1000.0, slippage=0.01)
    assert run.entry_price[0] == pytest.approx(12 * 1.01)
    assert run.exit_price[0] == pytest.approx(14 * 0.99)


def test_decisions_before_start_are_ignored() -> None:
    run = run_fast(OPEN, CLOSE, long_then_exit(), start=2, cash=1000.0)
    assert len(run.size) == 0 and run.equity.tolist() == [1000.0] * 6


def test_short_that_loses_everything_stops_the_run() -> None:
    open_ = np.array([10.0, 10.0, 10.0, 30.0, 30.0])
    close = np.array([10.0, 10.0, 10.0, 30.0, 30.0])
    signals = Signals.build(5, short_entries=[1, 0, 0, 0, 0])
    run = run_fast(open_, close, signals, start=0, cash=1000.0)
    assert run.size.tolist() == [-99.0]  # all-in is 1 - epsilon of equity, as in backtesting.py
    assert run.exit_bar.tolist() == [3] and run.exit_price.tolist() == [30.0]
    assert run.equity.tolist() == [1000.0, 1000.0, 1000.0, 0.0, 0.0]


def test_close_at_end_and_open_position() -> None:
    signals = Signals.build(6, long_entries=[0, 1, 0, 0, 0, 0])
    still_open = run_fast(OPEN, CLOSE, signals, start=0, cash=1000.0, sizing=Sizing.units(10))
    assert len(still_open.size) == 0
    assert (still_open.open_size, still_open.open_entry_price, still_open.open_entry_bar) == (
        10,
        12,
        2,
    )
    closed = run_fast(
        OPEN, CLOSE, signals, start=0, cash=1000.0, sizing=Sizing.units(10), close_at_end=True
    )
    assert closed.exit_bar.tolist() == [5] and closed.exit_price.tolist() == [15.5]
    assert closed.equity[-1] == pytest.approx(1000 + 10 * (15.5 - 12))


def test_reenter_closes_and_reopens_the_same_side() -> None:
    entries = [0, 1, 0, 1, 0, 0]
    plain = run_fast(OPEN, CLOSE, Signals.build(6, long_entries=entries), start=0, cash=1000.0)
    assert plain.open_entry_bar == 2 and len(plain.size) == 0
    again = run_fast(
        OPEN, CLOSE, Signals.build(6, long_entries=entries, reenter=True), start=0, cash=1000.0
    )
    assert again.entry_bar.tolist() == [2] and again.exit_bar.tolist() == [4]
    assert again.open_entry_bar == 4


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="fill model"):
        run_fast(OPEN, CLOSE, long_then_exit(), start=0, cash=1.0, fill="vwap")
    with pytest.raises(ValueError, match="cash"):
        run_fast(OPEN, CLOSE, long_then_exit(), start=0, cash=0.0)
