"""Simulated venue: a synthetic market data feed (exchange ``SIM``)."""

from trademk.venues.sim.feed import SIM_EXCHANGE, SimFeed
from trademk.venues.sim.market_model import DEFAULT_INSTRUMENTS, SimInstrument, instrument_for

__all__ = ["DEFAULT_INSTRUMENTS", "SIM_EXCHANGE", "SimFeed", "SimInstrument", "instrument_for"]
