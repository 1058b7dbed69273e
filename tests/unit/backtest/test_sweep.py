"""Sweep specifications as the CLI states them: ``--param``, ``--grid``, ``--constraint``."""

from __future__ import annotations

import pytest

from trademk.backtest.sweep import (
    Constraint,
    choose_engine,
    expand_grid,
    parse_grid,
    parse_params,
    resolve_stat,
)
from trademk.strategies.momentum import Momentum
from trademk.strategies.params import ParamError
from trademk.strategies.sma_cross import SmaCross

SMA_DEFAULTS = {"fast": 10, "slow": 20, "allow_short": True}


def test_params_are_parsed_by_their_declared_type() -> None:
    assert parse_params(SmaCross, ["fast=5", " slow = 30 ", "allow_short=no"]) == {
        "fast": 5,
        "slow": 30,
        "allow_short": False,
    }
    with pytest.raises(ParamError, match="takes name=value"):
        parse_params(SmaCross, ["fast"])


def test_grid_ranges_include_both_ends_and_lists_keep_their_order() -> None:
    grid = parse_grid(SmaCross, ["fast=5:20:5", "slow=60,30,30", "allow_short=true,false"])
    floats = parse_grid(Momentum, ["threshold=0:0.03:0.01", "lookback=3:5"])

    assert grid == {"fast": [5, 10, 15, 20], "slow": [60, 30], "allow_short": [True, False]}
    assert floats == {"threshold": [0.0, 0.01, 0.02, 0.03], "lookback": [3, 4, 5]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fast=0:10", "parameter 'fast' must be >= 1"),
        ("fast=5:1", "needs a <= b and a positive step"),
        ("fast=1:5:0", "needs a <= b and a positive step"),
        ("fast=1:5:x", "is not a:b[:step] of numbers"),
        ("fast=1:inf", "is not a:b[:step] of numbers"),
        ("allow_short=0:1", "needs a numeric parameter"),
        ("speed=1:5", "sma_cross has no parameter 'speed'"),
    ],
)
def test_bad_grids_are_refused_with_the_reason(spec: str, message: str) -> None:
    with pytest.raises(ParamError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_grid(SmaCross, [spec])


def test_constraint_evaluates_arithmetic_comparisons_and_logic_with_defaults() -> None:
    rule = Constraint("slow >= 2 * fast and not (fast == 7 or slow % 10 != 0)", SMA_DEFAULTS)

    assert rule({"fast": 10, "slow": 20})
    assert not rule({"fast": 11, "slow": 20})
    assert not rule({"fast": 7, "slow": 20})
    assert not rule({"fast": 5, "slow": 25})
    assert rule({"fast": 5})  # slow keeps its default, 20
    assert Constraint("3 < fast < slow", SMA_DEFAULTS)({"fast": 4, "slow": 9})
    assert not Constraint("3 < fast < slow", SMA_DEFAULTS)({"fast": 4, "slow": 4})


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('true')", "Call is not allowed"),
        ("fast.__class__", "Attribute is not allowed"),
        ("[fast][0] > 1", "is not allowed"),
        ("fast ** 99 > 1", "Pow is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("speed > 1", "unknown name 'speed'"),
        ("fast >", "is not an expression"),
    ],
)
def test_constraint_refuses_anything_but_plain_expressions(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Constraint(expression, SMA_DEFAULTS)


def test_expand_grid_drops_combinations_the_constraint_or_the_strategy_refuse() -> None:
    rule = Constraint("slow != 40", SMA_DEFAULTS)

    combos = expand_grid(
        SmaCross, {"fast": [10, 30], "slow": [20, 40]}, {"allow_short": False}, rule
    )

    assert combos == [{"allow_short": False, "fast": 10, "slow": 20}]
    with pytest.raises(ParamError, match="no parameter combination passes"):
        expand_grid(SmaCross, {"fast": [30]}, {}, None)
    with pytest.raises(ParamError, match="given both as --grid and --param"):
        expand_grid(SmaCross, {"fast": [5]}, {"fast": 5}, None)


def test_engine_and_statistic_names_are_resolved() -> None:
    assert choose_engine(SmaCross, None) == "fast"
    assert choose_engine(SmaCross, "event") == "event"
    assert resolve_stat("sharpe ratio") == "Sharpe Ratio"
    with pytest.raises(ValueError, match="no statistic 'Luck'"):
        resolve_stat("Luck")
