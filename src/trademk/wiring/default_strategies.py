"""The paper strategies a new user sees trading on the sim feed within a minute."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from trademk.config import Settings
from trademk.storage.strategy_repository import StrategyValues

_DEFAULT_INTERVAL: Final = "5s"
DEFAULT_STRATEGY_SET: Final = (
    StrategyValues(
        name="sma-cross-btc",
        strategy_class="sma_cross",
        symbols=["BTCUSDT"],
        interval=_DEFAULT_INTERVAL,
        capital_allocation=Decimal("1000"),
        params={"fast": 3, "slow": 8},
        enabled=True,
    ),
    StrategyValues(
        name="sma-cross-eth",
        strategy_class="sma_cross",
        symbols=["ETHUSDT"],
        interval=_DEFAULT_INTERVAL,
        capital_allocation=Decimal("1000"),
        params={"fast": 3, "slow": 8},
        enabled=True,
    ),
    StrategyValues(
        name="momentum-bnb",
        strategy_class="momentum",
        symbols=["BNBUSDT"],
        interval=_DEFAULT_INTERVAL,
        capital_allocation=Decimal("300"),
        params={"lookback": 2},
        enabled=True,
    ),
)
"""Paper strategies on 5-second bars of the sim feed: short windows so that a new
user sees orders within a minute; small capitals that fit the default risk limits
and keep the fees of their frequent trades far from the daily loss limit."""


def default_strategies(settings: Settings) -> list[StrategyValues]:
    """The default set, limited to symbols of the configured crypto universe."""
    universe = set(settings.crypto_symbols)
    return [v for v in DEFAULT_STRATEGY_SET if set(v.symbols) <= universe]


def seeds_default_strategies(settings: Settings) -> bool:
    """Whether the default set is created: only with the paper broker and the sim feed."""
    return settings.default_strategies and settings.broker == "paper" and settings.feed == "sim"
