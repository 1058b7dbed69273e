from __future__ import annotations

import pytest

from trademk.strategies import Param, ParamError, Strategy, get_strategy


class Demo(Strategy):
    name = "demo_params"
    window = Param(10, low=2, high=50, doc="bars")
    level = Param(0.5, low=0.0, high=1.0)
    enabled = Param(True)
    mode = Param("fast", choices=("fast", "slow"))


def test_defaults_apply_when_not_given() -> None:
    demo = Demo()
    assert (demo.window, demo.level, demo.enabled, demo.mode) == (10, 0.5, True, "fast")
    assert demo.param_values == {"window": 10, "level": 0.5, "enabled": True, "mode": "fast"}


def test_class_attribute_is_the_declaration() -> None:
    assert isinstance(Demo.window, Param)
    assert Demo.params["window"].describe()["low"] == 2
    assert list(Demo.params) == ["window", "level", "enabled", "mode"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"window": 2.5}, "integer"),
        ({"window": True}, "integer"),
        ({"window": 1}, ">= 2"),
        ({"window": 51}, "<= 50"),
        ({"level": "x"}, "number"),
        ({"enabled": 1}, "bool"),
        ({"mode": "medium"}, "one of"),
        ({"windw": 3}, "no parameter 'windw'"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_error(values: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        Demo(**values)


def test_integral_float_is_accepted_for_an_int_and_int_for_a_float() -> None:
    demo = Demo(window=12.0, level=1)
    assert demo.window == 12 and isinstance(demo.window, int)
    assert demo.level == 1.0 and isinstance(demo.level, float)


def test_text_values_are_parsed() -> None:
    assert Demo.params["window"].parse(" 7 ") == 7
    assert Demo.params["level"].parse("0.25") == 0.25
    assert Demo.params["enabled"].parse("false") is False
    with pytest.raises(ParamError, match="must be a int"):
        Demo.params["window"].parse("seven")
    with pytest.raises(ParamError, match="true or false"):
        Demo.params["enabled"].parse("maybe")


def test_cross_parameter_rules() -> None:
    sma_cross = get_strategy("sma_cross")
    with pytest.raises(ParamError, match="fast < slow"):
        sma_cross(fast=30, slow=20)
    assert not sma_cross.params_ok(fast=20, slow=20)
    assert sma_cross.params_ok(fast=5, slow=20)
    with pytest.raises(ParamError, match="lower < exit_level < upper"):
        get_strategy("rsi_reversion")(lower=60.0)
