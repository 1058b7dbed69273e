from __future__ import annotations

import sys

import numpy as np
import pytest

from trademk.strategies.signals import (
    ACTION_CLOSE,
    ACTION_LONG,
    ACTION_NONE,
    ACTION_SHORT,
    Signals,
    Sizing,
    decide_action,
    order_units,
)


@pytest.mark.parametrize(
    ("flags", "sign", "reenter", "expected"),
    [
        ((True, False, False, False), 0, False, ACTION_LONG),
        ((True, False, False, False), 1, False, ACTION_NONE),
        ((True, False, False, False), 1, True, ACTION_LONG),
        ((True, True, False, False), 0, False, ACTION_LONG),
        ((False, True, False, False), -1, False, ACTION_NONE),
        ((False, True, False, False), 1, False, ACTION_SHORT),
        ((False, False, True, False), 1, False, ACTION_CLOSE),
        ((False, False, True, False), -1, False, ACTION_NONE),
        ((False, False, False, True), -1, False, ACTION_CLOSE),
        ((False, False, True, True), 0, False, ACTION_NONE),
    ],
)
def test_decide_action_table(flags: tuple, sign: int, reenter: bool, expected: int) -> None:
    assert decide_action(*flags, sign, reenter) == expected


def test_long_only_turns_short_entries_into_long_exits() -> None:
    signals = Signals.build(
        3, long_entries=[True, False, False], short_entries=[False, True, False],
        short_exits=[False, False, True], allow_short=False,
    )  # fmt: skip
    assert signals.long_exits.tolist() == [False, True, False]
    assert not signals.short_entries.any() and not signals.short_exits.any()
    assert signals.active_bars().tolist() == [0, 1]


def test_signal_columns_must_match_the_bars() -> None:
    with pytest.raises(ValueError, match="shape"):
        Signals.build(3, long_entries=[True, False])


def test_all_in_units_follow_backtesting_py_arithmetic() -> None:
    cash, price, commission = 10_000.0, 169.02, 0.002
    fraction = 1 - sys.float_info.epsilon
    expected = (cash * fraction) // (price + (fraction * price * commission) / fraction)
    assert order_units(0, 1.0, cash, price, commission, 1.0) == expected == 59.0


def test_fixed_units_and_fractions_and_lots() -> None:
    assert Sizing.units(10).units_for(1_000.0, 99.0, 0.0, 1.0) == 10
    assert Sizing.units(11).units_for(1_000.0, 99.0, 0.0, 1.0) == 0  # does not fit
    assert Sizing.fraction(0.5).units_for(1_000.0, 10.0, 0.0, 1.0) == 50
    assert Sizing.cash(250).units_for(1_000.0, 10.0, 0.0, 1.0) == 25
    units = Sizing.all_in().units_for(1_000.0, 30_000.0, 0.001, 0.0001)
    assert units == pytest.approx(0.0333) and units * 30_000 * 1.001 <= 1_000
    assert order_units(0, 1.0, -5.0, 10.0, 0.0, 1.0) == 0


def test_sizing_parse() -> None:
    assert Sizing.parse(None) == Sizing.all_in()
    assert Sizing.parse(0.25) == Sizing.fraction(0.25)
    assert Sizing.parse(3) == Sizing.units(3)
    assert Sizing.parse("cash:500") == Sizing.cash(500)
    with pytest.raises(ValueError, match="cannot read sizing"):
        Sizing.parse("lots:x")
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        Sizing.fraction(1.5)
    assert np.isfinite(Sizing.all_in().value)
