"""Live bar aggregation: UTC-aligned, gap-aware, closed by later trades or by the clock."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick, TickKind, interval_nanos
from trademk.engine.bar_aggregator import BarAggregator

MINUTE = 60 * NANOS_PER_SECOND
T0 = 1_767_225_600 * NANOS_PER_SECOND  # 2026-01-01T00:00:00Z, a whole minute


def trade(symbol: str, ts: int, price: float, qty: float = 1.0) -> Tick:
    return Tick(symbol=symbol, exchange="X", kind=TickKind.TRADE, ts=ts, price=price, qty=qty)


def quote(symbol: str, ts: int, price: float) -> Tick:
    return Tick(symbol=symbol, exchange="X", kind=TickKind.QUOTE, ts=ts, price=price)


def run(aggregator: BarAggregator, ticks: list[Tick]) -> list[Bar]:
    bars = [bar for tick in ticks if (bar := aggregator.add(tick)) is not None]
    return bars + aggregator.flush()


def test_a_bar_closes_when_the_first_trade_of_the_next_minute_arrives() -> None:
    aggregator = BarAggregator("1m")
    assert aggregator.add(trade("BTC", T0 + 1, 100.0, 2.0)) is None
    assert aggregator.add(trade("BTC", T0 + 30 * NANOS_PER_SECOND, 105.0, 1.0)) is None
    assert aggregator.add(trade("BTC", T0 + 59 * NANOS_PER_SECOND, 99.0, 1.0)) is None
    closed = aggregator.add(trade("BTC", T0 + MINUTE, 101.0))
    assert closed == Bar(
        symbol="BTC",
        exchange="X",
        interval="1m",
        ts=T0,
        open=100.0,
        high=105.0,
        low=99.0,
        close=99.0,
        volume=4.0,
        vwap=(200.0 + 105.0 + 99.0) / 4.0,
        trades=3,
    )


def test_empty_minutes_produce_no_bars() -> None:
    aggregator = BarAggregator("1m")
    bars = run(aggregator, [trade("ETH", T0 + 5, 10.0), trade("ETH", T0 + 10 * MINUTE + 5, 11.0)])
    assert [bar.ts for bar in bars] == [T0, T0 + 10 * MINUTE]


def test_bars_are_aligned_to_utc_minutes_whatever_the_first_trade_time() -> None:
    aggregator = BarAggregator("1m")
    bars = run(aggregator, [trade("ETH", T0 + 37 * NANOS_PER_SECOND, 10.0)])
    assert bars[0].ts == T0


def test_quotes_are_ignored() -> None:
    aggregator = BarAggregator("1m")
    aggregator.add(quote("BTC", T0 + 1, 50.0))
    assert aggregator.current("BTC") is None
    aggregator.add(trade("BTC", T0 + 2, 100.0))
    aggregator.add(quote("BTC", T0 + 3, 500.0))
    current = aggregator.current("BTC")
    assert current is not None and current.high == 100.0


def test_close_due_closes_quiet_symbols_after_the_grace_period() -> None:
    aggregator = BarAggregator("1m", grace_ns=2 * NANOS_PER_SECOND)
    aggregator.add(trade("BTC", T0 + 1, 100.0))
    assert aggregator.close_due(T0 + MINUTE + NANOS_PER_SECOND) == []
    closed = aggregator.close_due(T0 + MINUTE + 2 * NANOS_PER_SECOND)
    assert [(bar.symbol, bar.ts) for bar in closed] == [("BTC", T0)]
    assert aggregator.current("BTC") is None


def test_trades_older_than_the_open_or_closed_bar_are_late_and_left_out() -> None:
    aggregator = BarAggregator("1m")
    aggregator.add(trade("BTC", T0 + MINUTE + 1, 100.0))
    aggregator.add(trade("BTC", T0 + 1, 1.0))  # older than the open bar
    aggregator.close_due(T0 + 3 * MINUTE)
    aggregator.add(trade("BTC", T0 + MINUTE + 2, 1.0))  # its bar is already closed
    assert aggregator.counters.late == 2
    assert aggregator.current("BTC") is None


def test_zero_volume_bar_has_its_close_as_vwap() -> None:
    aggregator = BarAggregator("1m")
    bars = run(aggregator, [trade("X", T0, 10.0, 0.0), trade("X", T0 + 1, 12.0, 0.0)])
    assert bars[0].vwap == 12.0 and bars[0].volume == 0.0


def test_multiples_of_a_minute_align_to_their_own_length() -> None:
    aggregator = BarAggregator("5m")
    bars = run(aggregator, [trade("X", T0 + 4 * MINUTE, 1.0), trade("X", T0 + 5 * MINUTE, 2.0)])
    assert [bar.ts for bar in bars] == [T0, T0 + 5 * MINUTE]
    assert {bar.interval for bar in bars} == {"5m"}


def test_bad_interval_or_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid interval"):
        BarAggregator("1x")
    with pytest.raises(ValueError, match="grace"):
        BarAggregator("1m", grace_ns=-1)


# ------------------------------------------------------------------ properties


@dataclass
class _Group:
    prices: list[float]
    sizes: list[float]


def bars_by_grouping(ticks: list[Tick], interval: str) -> list[Bar]:
    """Reference: drop trades older than the newest interval seen for their symbol,
    group the rest by (symbol, interval start), and summarise each group."""
    length = interval_nanos(interval)
    newest: dict[str, int] = {}
    groups: dict[tuple[str, int], _Group] = defaultdict(lambda: _Group([], []))
    order: list[tuple[str, int]] = []
    for tick in ticks:
        if tick.kind is not TickKind.TRADE:
            continue
        start = (tick.ts // length) * length
        if start < newest.get(tick.symbol, start):
            continue
        newest[tick.symbol] = start
        key = (tick.symbol, start)
        if key not in groups:
            order.append(key)
        groups[key].prices.append(tick.price)
        groups[key].sizes.append(tick.qty)
    bars = []
    for symbol, start in order:
        group = groups[(symbol, start)]
        volume = sum(group.sizes)
        notional = sum(p * q for p, q in zip(group.prices, group.sizes, strict=True))
        bars.append(
            Bar(
                symbol=symbol,
                exchange="X",
                interval=interval,
                ts=start,
                open=group.prices[0],
                high=max(group.prices),
                low=min(group.prices),
                close=group.prices[-1],
                volume=volume,
                vwap=notional / volume if volume > 0 else group.prices[-1],
                trades=len(group.prices),
            )
        )
    return bars


def _key(bar: Bar) -> tuple[str, int]:
    return bar.symbol, bar.ts


def assert_same_bars(got: list[Bar], want: list[Bar]) -> None:
    assert sorted(map(_key, got)) == sorted(map(_key, want))
    by_key = {_key(bar): bar for bar in want}
    for bar in got:
        expected = by_key[_key(bar)]
        assert (bar.open, bar.high, bar.low, bar.close, bar.trades) == (
            expected.open,
            expected.high,
            expected.low,
            expected.close,
            expected.trades,
        )
        assert bar.volume == pytest.approx(expected.volume)
        assert bar.vwap == pytest.approx(expected.vwap)


prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
sizes = st.floats(min_value=0.0, max_value=1e3, allow_nan=False, allow_infinity=False)
tick_st = st.builds(
    lambda symbol, offset, price, qty, is_trade: Tick(
        symbol=symbol,
        exchange="X",
        kind=TickKind.TRADE if is_trade else TickKind.QUOTE,
        ts=T0 + offset,
        price=price,
        qty=qty,
    ),
    st.sampled_from(["BTC", "ETH", "SOL"]),
    st.integers(min_value=0, max_value=20 * MINUTE),
    prices,
    sizes,
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(tick_st, max_size=80), st.sampled_from(["1m", "5m"]))
def test_bars_equal_an_independent_grouping_of_any_tick_sequence(
    ticks: list[Tick], interval: str
) -> None:
    assert_same_bars(run(BarAggregator(interval), ticks), bars_by_grouping(ticks, interval))


@settings(max_examples=200, deadline=None)
@given(st.lists(tick_st, max_size=80))
def test_time_ordered_ticks_are_never_late_and_every_trade_lands_in_one_bar(
    ticks: list[Tick],
) -> None:
    ordered = sorted(ticks, key=lambda t: t.ts)
    aggregator = BarAggregator("1m")
    bars = run(aggregator, ordered)
    assert aggregator.counters.late == 0
    assert sum(bar.trades for bar in bars) == sum(t.kind is TickKind.TRADE for t in ordered)
    for bar in bars:
        assert bar.ts % MINUTE == 0
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
