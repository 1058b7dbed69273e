"""The default strategy set: only on the paper venue with the sim feed, and tradable there."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from trademk.config import Settings
from trademk.engine.interval_bars import interval_length
from trademk.engine.strategy_spec import validated_params
from trademk.storage.seed import RISK_DEFAULTS
from trademk.venues.sim.market_model import instrument_for
from trademk.wiring.default_strategies import (
    DEFAULT_STRATEGY_SET,
    default_strategies,
    seeds_default_strategies,
)

RISK = {
    entry.key: Decimal(entry.value)
    for entry in RISK_DEFAULTS
    if entry.key.endswith(("usd", "crypto"))
}


@pytest.mark.parametrize(
    ("overrides", "seeded"),
    [
        ({}, True),
        ({"default_strategies": False}, False),
        ({"broker": "alpaca"}, False),
        ({"feed": "binance"}, False),
        ({"feed": "replay"}, False),
    ],
)
def test_defaults_are_seeded_only_with_the_paper_broker_and_the_sim_feed(
    overrides: dict[str, Any], seeded: bool
) -> None:
    assert seeds_default_strategies(Settings(_env_file=None, **overrides)) is seeded


def test_every_default_is_a_valid_enabled_paper_strategy_that_fits_the_risk_limits() -> None:
    assert len(DEFAULT_STRATEGY_SET) >= 3
    for values in DEFAULT_STRATEGY_SET:
        assert (values.enabled, values.mode) == (True, "paper")
        validated_params(values.strategy_class, values.params)
        # Short bars so that the first orders come within a minute of the first start.
        assert interval_length(values.interval) <= 5 * 1_000_000_000
        (symbol,) = values.symbols
        # All-in at the sim's starting price, with 10 % of room for the price to move.
        units = values.capital_allocation / Decimal(instrument_for(symbol).start_price)
        assert units * Decimal("1.1") <= RISK["max_order_qty_crypto"]
        assert values.capital_allocation <= RISK["max_order_notional_usd"]


def test_defaults_outside_the_configured_universe_are_left_out() -> None:
    settings = Settings(_env_file=None, crypto_symbols=["BTCUSDT", "SOLUSDT"])
    assert [v.name for v in default_strategies(settings)] == ["sma-cross-btc"]
