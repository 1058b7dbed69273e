"""Strategies by name: the built-ins, plus any class registered with ``register_strategy``."""

from __future__ import annotations

from trademk.strategies.base import Strategy
from trademk.strategies.donchian_breakout import DonchianBreakout
from trademk.strategies.momentum import Momentum
from trademk.strategies.rsi_reversion import RsiReversion
from trademk.strategies.sma_cross import SmaCross

__all__ = ["describe_strategies", "get_strategy", "register_strategy", "strategy_names"]

_REGISTRY: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Make ``cls`` available under ``cls.name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"only Strategy subclasses can be registered, got {cls!r}")
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no `name` to register it under")
    known = _REGISTRY.get(cls.name)
    if known is not None and known is not cls:
        raise ValueError(f"a strategy named {cls.name!r} is already registered ({known.__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as ``name``; ``KeyError`` naming the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown strategy {name!r} (known: {known})") from None


def strategy_names() -> list[str]:
    """Registered names, sorted."""
    return sorted(_REGISTRY)


def describe_strategies() -> list[dict[str, object]]:
    """Name, description and parameters of every registered strategy (for the CLI and API)."""
    return [
        {
            "name": name,
            "description": cls.description,
            "signals": cls.has_signals(),
            "params": [param.describe() for param in cls.params.values()],
        }
        for name, cls in sorted(_REGISTRY.items())
    ]


for _builtin in (SmaCross, RsiReversion, DonchianBreakout, Momentum):
    register_strategy(_builtin)
