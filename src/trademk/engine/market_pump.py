"""The market-data hot path: feed → latest-price cache → ingest pipeline and bus."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog

from trademk.domain.market import Bar, Tick
from trademk.domain.ports import MarketDataFeed
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.engine.price_cache import LatestPriceCache

log = structlog.get_logger(__name__)

BarListener = Callable[[Bar], None]


class TickSink(Protocol):
    async def put(self, tick: Tick) -> None: ...


class MarketDataPump:
    """Reads one feed for its whole life and hands every item on.

    Ticks update the price cache first (the paper venue, risk and marks read
    it), then go to the ingest pipeline, whose bounded queue is the only place
    the pump may wait. Bars produced by a feed go to the bar listeners.
    """

    def __init__(
        self,
        feed: MarketDataFeed,
        prices: LatestPriceCache,
        sink: TickSink | None,
        symbols: Sequence[str],
    ) -> None:
        self.feed = feed
        self.prices = prices
        self.sink = sink
        self.symbols = list(symbols)
        self.lifecycle = Lifecycle(f"feed:{feed.name}")
        self._bar_listeners: list[BarListener] = []
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.bars = 0

    def on_bar(self, listener: BarListener) -> None:
        self._bar_listeners.append(listener)

    async def start(self) -> None:
        await self.feed.subscribe(self.symbols)
        self._task = asyncio.create_task(self._pump(), name=f"pump-{self.feed.name}")
        self.lifecycle.to(ComponentState.RUNNING)

    async def _pump(self) -> None:
        prices, sink = self.prices, self.sink
        try:
            async for item in self.feed.stream():
                if isinstance(item, Tick):
                    self.ticks += 1
                    prices.update(item)
                    if sink is not None:
                        await sink.put(item)
                else:
                    self.bars += 1
                    for listener in self._bar_listeners:
                        listener(item)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.lifecycle.to(ComponentState.DEGRADED, f"feed stopped: {err}")
            log.exception("market data pump stopped", feed=self.feed.name)
            return
        log.info("feed finished", feed=self.feed.name, ticks=self.ticks)

    async def stop(self) -> None:
        await self.feed.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.lifecycle.to(ComponentState.STOPPED)

    def status(self) -> dict[str, Any]:
        status = dict(self.feed.status())
        if self.lifecycle.state is ComponentState.DEGRADED:
            status["state"] = str(self.lifecycle.state)
            status["reason"] = self.lifecycle.reason
        status["pumped_ticks"] = self.ticks
        return status
