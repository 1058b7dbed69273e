"""Fixtures for paper-venue tests (helpers live in ``support``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.unit.venues.paper.support import DAY_END, START_NS, PaperWorld, WorldFactory
from trademk.engine.clock import SimClock
from trademk.engine.price_cache import LatestPriceCache
from trademk.venues.paper import PaperVenue


@pytest.fixture
async def make_world() -> AsyncIterator[WorldFactory]:
    """``await make_world(**PaperVenue kwargs)``: a started venue at ``START_NS``."""
    worlds: list[PaperWorld] = []

    async def factory(**kwargs: Any) -> PaperWorld:
        clock = SimClock(kwargs.pop("start_ns", START_NS))
        prices = LatestPriceCache()
        kwargs.setdefault("day_end", DAY_END)
        kwargs.setdefault("expiry_poll_interval", None)
        venue = PaperVenue(prices, clock, **kwargs)
        await venue.start()
        world = PaperWorld(venue, prices, clock)
        world.start_recording()
        worlds.append(world)
        await world.settle()
        return world

    yield factory
    for world in worlds:
        await world.stop()
        # The price cache swallows listener errors; a matching bug must fail the test.
        assert world.prices.listener_errors == 0


@pytest.fixture
async def world(make_world: WorldFactory) -> PaperWorld:
    """A default paper venue: 100 000 USD, no fees, no slippage, shorting allowed."""
    return await make_world()
