"""Alert rules: conditions, once vs repeating, re-arming, cooldown, percent windows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademk.domain.alerts import (
    NANOS_PER_SECOND,
    Alert,
    AlertCondition,
    AlertMode,
    AlertRule,
    AlertRuleError,
    AlertState,
    PercentWindow,
)

S = NANOS_PER_SECOND


def state(
    condition: AlertCondition,
    *,
    level: float | None = None,
    percent: float | None = None,
    window_ns: int | None = None,
    mode: AlertMode = AlertMode.ONCE,
    cooldown_ns: int = 0,
    slots: int = 60,
) -> AlertState:
    rule = AlertRule("BTCUSDT", condition, level, percent, window_ns, mode, cooldown_ns)
    return AlertState(Alert("a1", rule, "test"), window_slots=slots)


def fire_indexes(alert: AlertState, prices: list[float], step_ns: int = S) -> list[int]:
    return [i for i, price in enumerate(prices) if alert.evaluate(price, i * step_ns) is not None]


def test_above_fires_at_or_above_the_level() -> None:
    alert = state(AlertCondition.ABOVE, level=100.0)
    assert fire_indexes(alert, [99.0, 99.9, 100.0, 101.0]) == [2]


def test_below_fires_at_or_below_the_level() -> None:
    alert = state(AlertCondition.BELOW, level=100.0)
    assert fire_indexes(alert, [101.0, 100.5, 99.0]) == [2]


def test_once_alert_is_spent_after_firing() -> None:
    alert = state(AlertCondition.ABOVE, level=100.0)
    assert fire_indexes(alert, [101.0, 99.0, 102.0, 103.0]) == [0]
    assert alert.spent


def test_trigger_carries_price_time_reference_and_message() -> None:
    alert = state(AlertCondition.CROSSING, level=100.0)
    alert.evaluate(99.0, 1)
    fired = alert.evaluate(100.5, 2)
    assert fired is not None
    assert (fired.alert_id, fired.symbol, fired.price, fired.ts_ns) == ("a1", "BTCUSDT", 100.5, 2)
    assert fired.reference_price == 100.0 and fired.spent
    assert "crossed up through 100" in fired.message


def test_repeating_rearms_only_after_the_condition_was_false() -> None:
    alert = state(AlertCondition.ABOVE, level=100.0, mode=AlertMode.REPEATING)
    assert fire_indexes(alert, [101.0, 102.0, 99.0, 103.0, 104.0, 98.0, 100.0]) == [0, 3, 6]
    assert not alert.spent


def test_repeating_cooldown_delays_the_next_firing_while_the_condition_holds() -> None:
    alert = state(AlertCondition.ABOVE, level=100.0, mode=AlertMode.REPEATING, cooldown_ns=10 * S)
    # Re-armed at t=2 but cooling down until t=10; still above at t=10, so it fires then.
    prices = [101.0, 101.0, 99.0, 101.0, 101.0, 101.0, 101.0, 101.0, 101.0, 101.0, 101.0]
    assert fire_indexes(alert, prices) == [0, 10]


def test_crossing_fires_in_both_directions_and_not_on_the_first_price() -> None:
    alert = state(AlertCondition.CROSSING, level=100.0, mode=AlertMode.REPEATING)
    assert fire_indexes(alert, [101.0, 102.0, 99.0, 98.0, 100.0, 100.0, 99.99]) == [2, 4, 6]


def test_percent_move_up_from_the_window_low() -> None:
    alert = state(AlertCondition.PERCENT_MOVE, percent=5.0, window_ns=60 * S)
    fired = None
    for i, price in enumerate([100.0, 98.0, 101.0, 102.8, 103.0]):
        fired = alert.evaluate(price, i * S) or fired
    assert fired is not None
    assert fired.reference_price == 98.0
    assert fired.change_pct == pytest.approx((103.0 - 98.0) / 98.0 * 100)
    assert fired.price == 103.0


def test_percent_move_down_from_the_window_high_is_negative() -> None:
    alert = state(AlertCondition.PERCENT_MOVE, percent=5.0, window_ns=60 * S)
    assert alert.evaluate(100.0, 0) is None
    fired = alert.evaluate(94.0, S)
    assert fired is not None and fired.change_pct == pytest.approx(-6.0)
    assert "-6.00%" in fired.message


def test_percent_move_ignores_prices_that_left_the_window() -> None:
    alert = state(AlertCondition.PERCENT_MOVE, percent=5.0, window_ns=60 * S)
    assert alert.evaluate(100.0, 0) is None
    assert alert.evaluate(110.0, 120 * S) is None  # the 100 is two minutes old


def test_percent_window_memory_is_bounded_by_its_slots() -> None:
    window = PercentWindow(60 * S, slots=60)
    for i in range(100_000):
        window.add(100.0 + (i % 7), i * 1_000_000)
    assert window.slots == 60
    assert window.low_high() == (100.0, 106.0)


def test_nan_prices_are_ignored() -> None:
    alert = state(AlertCondition.ABOVE, level=1.0)
    assert alert.evaluate(float("nan"), 0) is None
    assert alert.evaluate(2.0, 1) is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"condition": AlertCondition.ABOVE}, "level is required"),
        ({"condition": AlertCondition.ABOVE, "level": -1.0}, "level must be a positive"),
        ({"condition": AlertCondition.ABOVE, "level": float("inf")}, "level must be a positive"),
        ({"condition": AlertCondition.BELOW, "level": 1.0, "percent": 2.0}, "take a level"),
        ({"condition": AlertCondition.PERCENT_MOVE, "window_ns": S}, "percent is required"),
        ({"condition": AlertCondition.PERCENT_MOVE, "percent": 5.0}, "window is required"),
        (
            {"condition": AlertCondition.PERCENT_MOVE, "percent": 5.0, "window_ns": 0},
            "window must be longer than 0",
        ),
        (
            {"condition": AlertCondition.PERCENT_MOVE, "percent": 5000.0, "window_ns": S},
            "at most",
        ),
        (
            {
                "condition": AlertCondition.PERCENT_MOVE,
                "percent": 5.0,
                "window_ns": S,
                "level": 3.0,
            },
            "not a level",
        ),
        ({"condition": AlertCondition.ABOVE, "level": 1.0, "cooldown_ns": -1}, "cooldown"),
    ],
)
def test_inconsistent_rules_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(AlertRuleError, match=message):
        AlertRule(symbol="BTCUSDT", **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ properties

price_lists = st.lists(
    st.floats(min_value=1.0, max_value=200.0, allow_nan=False), min_size=1, max_size=60
)
levels = st.floats(min_value=1.0, max_value=200.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(price_lists, levels)
def test_repeating_above_fires_exactly_on_each_rise_to_the_level(
    prices: list[float], level: float
) -> None:
    alert = state(AlertCondition.ABOVE, level=level, mode=AlertMode.REPEATING)
    expected = [
        i for i, price in enumerate(prices) if price >= level and (i == 0 or prices[i - 1] < level)
    ]
    assert fire_indexes(alert, prices) == expected


@settings(max_examples=300, deadline=None)
@given(price_lists, levels)
def test_repeating_crossing_fires_exactly_when_the_side_of_the_level_changes(
    prices: list[float], level: float
) -> None:
    alert = state(AlertCondition.CROSSING, level=level, mode=AlertMode.REPEATING)
    expected = [
        i for i in range(1, len(prices)) if (prices[i - 1] >= level) != (prices[i] >= level)
    ]
    assert fire_indexes(alert, prices) == expected


@settings(max_examples=300, deadline=None)
@given(price_lists, levels, st.sampled_from(list(AlertCondition)[:3]))
def test_a_once_alert_fires_at_most_once_and_at_the_repeating_alerts_first_firing(
    prices: list[float], level: float, condition: AlertCondition
) -> None:
    once = fire_indexes(state(condition, level=level), prices)
    repeating = fire_indexes(state(condition, level=level, mode=AlertMode.REPEATING), prices)
    assert once == repeating[:1]


@settings(max_examples=300, deadline=None)
@given(
    price_lists,
    st.floats(min_value=0.5, max_value=50.0),
    st.integers(min_value=1, max_value=30),
)
def test_percent_move_fires_first_when_a_move_within_the_window_reaches_the_threshold(
    prices: list[float], percent: float, window_steps: int
) -> None:
    """With one price per bucket, the ring holds exactly the last ``window_steps`` prices."""
    alert = state(
        AlertCondition.PERCENT_MOVE, percent=percent, window_ns=window_steps * S, slots=window_steps
    )

    def moved(i: int) -> bool:
        recent = prices[max(0, i - window_steps + 1) : i + 1]
        low, high = min(recent), max(recent)
        return (prices[i] - low) / low * 100 >= percent or (
            high - prices[i]
        ) / high * 100 >= percent

    first = next((i for i in range(len(prices)) if moved(i)), None)
    assert fire_indexes(alert, prices) == ([] if first is None else [first])
