from __future__ import annotations

import numpy as np

from trademk.strategies import Bars, get_strategy


def bars_from(
    close: list[float], high: list[float] | None = None, low: list[float] | None = None
) -> Bars:
    n = len(close)
    return Bars.from_arrays(
        np.arange(n) * 60_000_000_000, close, high or close, low or close, close
    )


def prepared(name: str, bars: Bars, **params: object):  # type: ignore[no-untyped-def]
    strategy = get_strategy(name)(**params)
    strategy.prepare(bars)
    return strategy.prepared_signals


def test_sma_cross_enters_long_on_cross_up_and_short_on_cross_down() -> None:
    close = [5.0, 4.0, 3.0, 2.0, 3.0, 5.0, 7.0, 6.5, 4.0, 2.0]
    signals = prepared("sma_cross", bars_from(close), fast=1, slow=3)
    assert np.flatnonzero(signals.long_entries).tolist() == [4]
    assert np.flatnonzero(signals.short_entries).tolist() == [8]
    assert signals.reenter is True
    long_only = prepared("sma_cross", bars_from(close), fast=1, slow=3, allow_short=False)
    assert not long_only.short_entries.any()
    assert np.flatnonzero(long_only.long_exits).tolist() == [8]


def test_rsi_reversion_levels() -> None:
    falling_then_rising = list(np.r_[np.linspace(100, 60, 30), np.linspace(60, 110, 30)])
    signals = prepared("rsi_reversion", bars_from(falling_then_rising), period=5)
    first_long = int(np.flatnonzero(signals.long_entries)[0])
    assert first_long < 30  # oversold during the fall
    assert signals.long_exits[35:].any() and signals.short_entries[40:].any()
    assert not signals.long_entries[:5].any()  # warming up


def test_donchian_breakout_uses_previous_bars_only() -> None:
    close = [10.0, 10.5, 10.2, 10.4, 11.0, 10.9, 9.0, 8.0]
    signals = prepared("donchian_breakout", bars_from(close), entry=3, exit=2)
    # bar 4 closes above the high of bars 1..3 (10.5); the current bar is not in its channel
    assert signals.long_entries.tolist()[4] and not signals.long_entries[:4].any()
    assert signals.long_exits[6]  # 9.0 < min(11.0, 10.9)
    assert signals.short_entries[6]  # 9.0 < min of bars 3..5 (10.4)


def test_momentum_follows_the_sign_of_the_return() -> None:
    close = [100.0, 101.0, 102.0, 103.0, 101.0, 99.0, 98.0]
    signals = prepared("momentum", bars_from(close), lookback=2)
    assert signals.long_entries.tolist() == [False, False, True, True, False, False, False]
    assert signals.short_entries.tolist() == [False, False, False, False, True, True, True]
    assert signals.long_exits[4] and signals.short_exits[2]
