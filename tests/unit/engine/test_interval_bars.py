"""Strategy bar intervals: 1m and its multiples aligned to UTC, sub-minute bars, gaps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick, TickKind
from trademk.engine.bar_aggregator import BarAggregator
from trademk.engine.interval_bars import (
    MINUTE_NS,
    BarResampler,
    IntervalError,
    StrategyBars,
    interval_length,
)

T0 = 1_767_225_600 * NANOS_PER_SECOND  # 2026-01-01T00:00:00Z
SECOND = NANOS_PER_SECOND


def minute_bar(ts: int, o: float, h: float, low: float, c: float, v: float = 1.0) -> Bar:
    return Bar("BTCUSDT", "X", "1m", ts, o, h, low, c, v, (h + low + c) / 3, 2)


def trade(ts: int, price: float, qty: float = 1.0, symbol: str = "BTCUSDT") -> Tick:
    return Tick(symbol, "X", TickKind.TRADE, ts, price, qty)


def test_unsupported_intervals_are_refused_with_the_supported_ones_listed() -> None:
    assert interval_length("5m") == 5 * MINUTE_NS
    with pytest.raises(IntervalError, match=r"unsupported interval '7m'.*5s, 10s.*1d"):
        interval_length("7m")
    with pytest.raises(IntervalError):
        BarResampler("1m")


def test_five_minute_bars_are_aligned_to_utc_and_close_with_their_last_minute() -> None:
    resampler = BarResampler("5m")
    start = T0 + 3 * MINUTE_NS  # 00:03, inside the 00:00-00:05 bucket
    assert resampler.add(minute_bar(start, 10, 12, 9, 11, 2.0)) == []
    closed = resampler.add(minute_bar(start + MINUTE_NS, 11, 15, 10, 14, 3.0))
    assert len(closed) == 1
    bar = closed[0]
    assert (bar.ts, bar.interval) == (T0, "5m")
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades) == (
        10,
        15,
        9,
        14,
        5.0,
        4,
    )
    expected_vwap = ((12 + 9 + 11) / 3 * 2.0 + (15 + 10 + 14) / 3 * 3.0) / 5.0
    assert bar.vwap == pytest.approx(expected_vwap)


def test_a_bucket_ending_in_a_gap_closes_when_a_later_minute_arrives() -> None:
    resampler = BarResampler("5m")
    assert resampler.add(minute_bar(T0, 10, 11, 9, 10)) == []
    # Nothing from 00:01 to 00:11: the 00:05 bucket has no bar at all.
    closed = resampler.add(minute_bar(T0 + 11 * MINUTE_NS, 20, 21, 19, 20))
    assert [b.ts for b in closed] == [T0]
    assert resampler.close_due(T0 + 15 * MINUTE_NS) == [
        Bar("BTCUSDT", "X", "5m", T0 + 10 * MINUTE_NS, 20, 21, 19, 20, 1.0, 20.0, 2)
    ]


def test_close_due_waits_for_the_grace_period_and_late_minutes_are_dropped() -> None:
    resampler = BarResampler("1h", grace_ns=2 * SECOND)
    resampler.add(minute_bar(T0 + 10 * MINUTE_NS, 10, 11, 9, 10))
    assert resampler.close_due(T0 + 60 * MINUTE_NS + SECOND) == []
    assert [b.ts for b in resampler.close_due(T0 + 60 * MINUTE_NS + 2 * SECOND)] == [T0]
    assert resampler.add(minute_bar(T0 + 20 * MINUTE_NS, 10, 11, 9, 10)) == []
    assert resampler.late == 1


def test_sub_minute_minute_and_multiple_bars_come_out_of_the_same_ticks() -> None:
    bars = StrategyBars()
    bars.use("15s")
    bars.use("5m")
    closed: list[Bar] = []
    for second in range(0, 5 * 60 + 1, 5):
        closed += bars.on_tick(trade(T0 + second * SECOND, 100.0 + second))
    closed += bars.on_tick(Tick("BTCUSDT", "X", TickKind.QUOTE, T0 + 400 * SECOND, 1.0))
    by_interval: dict[str, list[int]] = {}
    for bar in closed:
        by_interval.setdefault(bar.interval, []).append(bar.ts)
    assert by_interval["15s"] == [T0 + k * 15 * SECOND for k in range(20)]
    assert by_interval["1m"] == [T0 + k * MINUTE_NS for k in range(5)]
    assert by_interval["5m"] == [T0]
    assert bars.intervals == ["15s", "1m", "5m"]


def test_close_due_folds_the_quiet_minute_into_its_multiple_first() -> None:
    bars = StrategyBars(grace_ns=SECOND)
    bars.use("3m")
    bars.on_tick(trade(T0 + 2 * MINUTE_NS + 5 * SECOND, 100.0))
    closed = bars.close_due(T0 + 3 * MINUTE_NS + SECOND)
    assert [(b.interval, b.ts) for b in closed] == [("1m", T0 + 2 * MINUTE_NS), ("3m", T0)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40 * 60 - 1), st.floats(1.0, 1000.0), st.floats(0.0, 5.0)),
        min_size=1,
        max_size=200,
    )
)
def test_resampled_bars_equal_bars_built_from_the_ticks_directly(
    raw: list[tuple[int, float, float]],
) -> None:
    ticks = [trade(T0 + second * SECOND, price, qty) for second, price, qty in sorted(raw)]
    bars = StrategyBars()
    bars.use("15m")
    resampled = [b for t in ticks for b in bars.on_tick(t) if b.interval == "15m"]
    resampled += [b for b in bars.close_due(T0 + 10**15) if b.interval == "15m"]
    direct = BarAggregator("15m")
    expected = [b for t in ticks if (b := direct.add(t)) is not None] + direct.flush()
    assert [(b.ts, b.open, b.high, b.low, b.close, b.trades) for b in resampled] == [
        (b.ts, b.open, b.high, b.low, b.close, b.trades) for b in expected
    ]
    for got, want in zip(resampled, expected, strict=True):
        assert got.volume == pytest.approx(want.volume)
        assert got.vwap == pytest.approx(want.vwap)
