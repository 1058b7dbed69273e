"""Replay venue: stored or file ticks played back as a market data feed."""

from trademk.venues.replay.feed import ReplayFeed
from trademk.venues.replay.files import TickFileError, load_tick_file

__all__ = ["ReplayFeed", "TickFileError", "load_tick_file"]
