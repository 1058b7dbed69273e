"""What the live runtime needs to know to run a strategy, and how it is validated.

A :class:`StrategySpec` is the engine's view of a stored strategy instance:
its registered class, parameters, symbols, bar interval, capital allocation,
entry sizing and mode. :func:`check_spec` refuses anything that cannot run
with a :class:`StrategyConfigError` whose message says what to change; the API
turns it into a 422.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from trademk.engine.interval_bars import IntervalError, interval_length
from trademk.strategies.base import Strategy
from trademk.strategies.params import ParamError, ParamValue
from trademk.strategies.registry import get_strategy
from trademk.strategies.signals import Sizing

__all__ = [
    "StrategyConfigError",
    "StrategyMode",
    "StrategyResolver",
    "StrategySpec",
    "check_spec",
    "instantiate",
    "parse_sizing",
    "validated_params",
]

StrategyResolver = Callable[[str], type[Strategy]]
MAX_SYMBOLS: Final = 20


class StrategyConfigError(ValueError):
    """A strategy cannot run as configured (unknown class, bad parameter, interval, sizing)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class StrategyMode(enum.StrEnum):
    """Where a strategy's orders go: the built-in paper venue, or a real broker."""

    PAPER = "paper"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """One strategy instance as the runner runs it.

    ``strategy_id`` tags its orders and fills; ``capital`` is the starting cash
    of its own book, which sizes its entries; ``sizing`` is a ``Sizing`` text
    (``all_in``, ``fraction:0.5``, ``units:2``, ``cash:1000``).
    """

    strategy_id: str
    name: str
    strategy_class: str
    symbols: tuple[str, ...]
    interval: str
    capital: Decimal
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    sizing: str = "all_in"
    mode: StrategyMode = StrategyMode.PAPER


def _resolve(resolve: StrategyResolver, name: str) -> type[Strategy]:
    try:
        return resolve(name)
    except KeyError as err:
        message = err.args[0] if err.args else f"unknown strategy {name!r}"
        raise StrategyConfigError("strategy_class", str(message)) from None


def validated_params(
    strategy_class: str,
    params: Mapping[str, object],
    resolve: StrategyResolver = get_strategy,
) -> dict[str, ParamValue]:
    """Every parameter of ``strategy_class`` (given ones checked against their ranges,
    the others at their defaults), or ``StrategyConfigError``."""
    cls = _resolve(resolve, strategy_class)
    try:
        return cls(**params).param_values
    except ParamError as err:
        raise StrategyConfigError("params", str(err)) from None


def parse_sizing(text: str) -> Sizing:
    """The ``Sizing`` a text names, or ``StrategyConfigError``."""
    try:
        return Sizing.parse(text)
    except ValueError as err:
        raise StrategyConfigError("sizing", str(err)) from None


def check_spec(spec: StrategySpec, resolve: StrategyResolver = get_strategy) -> None:
    """Raise ``StrategyConfigError`` unless ``spec`` can run (symbols are checked by the caller
    against the universe; here only their count and uniqueness)."""
    validated_params(spec.strategy_class, spec.params, resolve)
    parse_sizing(spec.sizing)
    try:
        interval_length(spec.interval)
    except IntervalError as err:
        raise StrategyConfigError("interval", str(err)) from None
    if not spec.symbols:
        raise StrategyConfigError("symbols", "a strategy needs at least one symbol")
    if len(spec.symbols) > MAX_SYMBOLS:
        raise StrategyConfigError("symbols", f"a strategy trades at most {MAX_SYMBOLS} symbols")
    if len(set(spec.symbols)) != len(spec.symbols):
        raise StrategyConfigError("symbols", "symbols must not repeat")
    if not spec.capital > 0:
        raise StrategyConfigError("capital_allocation", "capital allocation must be positive")


def instantiate(spec: StrategySpec, resolve: StrategyResolver = get_strategy) -> Strategy:
    """A fresh strategy instance for ``spec`` with its entry sizing set."""
    cls = _resolve(resolve, spec.strategy_class)
    try:
        strategy = cls(**spec.params)
    except ParamError as err:
        raise StrategyConfigError("params", str(err)) from None
    strategy.sizing = parse_sizing(spec.sizing)
    return strategy
