"""Strategies: the Strategy API, indicators and the built-in strategies."""

from trademk.strategies.bars import Bars
from trademk.strategies.base import IntentKind, OrderIntent, Strategy, StrategyBroker, StrategyError
from trademk.strategies.params import Param, ParamError
from trademk.strategies.registry import (
    describe_strategies,
    get_strategy,
    register_strategy,
    strategy_names,
)
from trademk.strategies.signals import Signals, Sizing

__all__ = [
    "Bars",
    "IntentKind",
    "OrderIntent",
    "Param",
    "ParamError",
    "Signals",
    "Sizing",
    "Strategy",
    "StrategyBroker",
    "StrategyError",
    "describe_strategies",
    "get_strategy",
    "register_strategy",
    "strategy_names",
]
