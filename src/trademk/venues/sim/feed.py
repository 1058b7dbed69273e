"""SimFeed: a synthetic market as a :class:`MarketDataFeed` (exchange ``SIM``).

Events arrive as a Poisson process with a configurable total rate across the
subscribed universe (each symbol gets ``rate / len(universe)``). Stocks tick
only while an NYSE regular session is open (unless told otherwise); crypto
ticks around the clock. Apart from ``received`` in real-time mode, the output
is a pure function of the seed, the symbols and the clock's time at
``stream()`` start.

With ``realtime=True`` the feed waits until each event's time on the injected
clock; with ``realtime=False`` it produces simulated time as fast as the
consumer reads, without reading the clock again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from trademk.domain.calendar import NyseCalendar
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Bar, Tick
from trademk.engine.clock import Clock, ns_to_datetime
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.venues.reconnect import FeedCounters, feed_status
from trademk.venues.sim.market_model import MarketModel, SimInstrument, SymbolWalk, instrument_for

SIM_EXCHANGE: Final = "SIM"
DEFAULT_RATE: Final = 300.0
_YIELD_EVERY: Final = 256  # fast mode: let other tasks run every so many ticks
_LONG_WAIT_S: Final = 1.0

Sleep = Callable[[float], Awaitable[None]]


class SimFeed:
    """Synthetic ticks for any symbols; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        *,
        symbols: Sequence[str] = (),
        instruments: Mapping[str, SimInstrument] | None = None,
        seed: int = 0,
        rate: float = DEFAULT_RATE,
        trade_fraction: float = 0.35,
        realtime: bool = True,
        stocks_follow_calendar: bool = True,
        calendar: NyseCalendar | None = None,
        exchange: str = SIM_EXCHANGE,
        sleep: Sleep = asyncio.sleep,
        name: str = "sim",
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (ticks per second across all symbols)")
        self.name = name
        self.exchange = exchange
        self._clock = clock
        self._instruments = dict(instruments or {})
        self._seed = seed
        self._rate = rate
        self._realtime = realtime
        self._stocks_follow_calendar = stocks_follow_calendar
        self._calendar = calendar
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._model = MarketModel(self._rng, exchange, trade_fraction)
        self._symbols: list[str] = []
        self._walks: dict[str, SymbolWalk] = {}
        self._lifecycle = Lifecycle(name)
        self._counters = FeedCounters()
        self._closed = asyncio.Event()
        self._universe_changed = asyncio.Event()
        self._streaming = False
        self._sim_ns: int | None = None
        # Active set is constant until _boundary_ns (next session open/close).
        self._active: list[SymbolWalk] = []
        self._boundary_ns: int | None = None
        self._active_valid_from = -1
        self._add_symbols(symbols)

    # -- MarketDataFeed ---------------------------------------------------

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Add symbols to the universe (duplicates are ignored)."""
        self._add_symbols(symbols)

    def _add_symbols(self, symbols: Sequence[str]) -> None:
        if isinstance(symbols, str):
            raise TypeError("subscribe() takes a sequence of symbols, not one string")
        for symbol in symbols:
            if symbol in self._walks:
                continue
            instrument = self._instruments.get(symbol) or instrument_for(symbol)
            start = self._sim_ns if self._sim_ns is not None else 0
            self._walks[symbol] = SymbolWalk(instrument, start)
            self._symbols.append(symbol)
        self._active_valid_from = -1
        self._universe_changed.set()

    def stream(self) -> AsyncIterator[Tick | Bar]:
        """Ticks until ``close()``; one stream per feed."""
        if self._streaming:
            raise RuntimeError(f"{self.name}: stream() is already running")
        self._streaming = True
        return self._generate()

    def status(self) -> dict[str, Any]:
        self._counters.extra.update(
            seed=self._seed, rate=self._rate, realtime=self._realtime, sim_time_ns=self._sim_ns
        )
        return feed_status(
            self.name,
            self._lifecycle,
            self._counters,
            self._lifecycle.state is ComponentState.RUNNING,
            list(self._symbols),
        )

    async def close(self) -> None:
        self._closed.set()
        self._lifecycle.to(ComponentState.STOPPED, "closed")

    # -- generation -------------------------------------------------------

    async def _generate(self) -> AsyncIterator[Tick | Bar]:
        now = self._clock.now_ns()
        self._sim_ns = now
        for walk in self._walks.values():
            walk.last_ns = now
        if self._lifecycle.state is ComponentState.READY:
            self._lifecycle.to(ComponentState.RUNNING)
        emitted = 0
        while not self._closed.is_set():
            tick = await self._next_tick()
            if tick is None:
                continue
            self._counters.ticks += 1
            self._counters.messages += 1
            self._counters.last_message_ns = tick.received
            yield tick
            emitted += 1
            if not self._realtime and emitted % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _next_tick(self) -> Tick | None:
        """One event, or None after moving time (idle universe, session edge, close)."""
        now = self._sim_ns if self._sim_ns is not None else self._clock.now_ns()
        active = self._active_at(now)
        if not active:
            await self._idle(now)
            return None
        per_symbol = self._rate / max(1, len(self._walks))
        gap_ns = max(1, int(self._rng.expovariate(per_symbol * len(active)) * NANOS_PER_SECOND))
        event_ns = now + gap_ns
        if self._boundary_ns is not None and event_ns >= self._boundary_ns:
            # The active set changes first; arrivals are memoryless, so redraw from there.
            self._sim_ns = self._boundary_ns
            return None
        self._sim_ns = event_ns
        if self._realtime and not await self._wait_until(event_ns):
            return None
        walk = active[self._rng.randrange(len(active))]
        received = self._clock.now_ns() if self._realtime else event_ns
        return self._model.next_tick(walk, event_ns, received)

    async def _idle(self, now: int) -> None:
        if self._boundary_ns is None:  # nothing subscribed: wait for subscribe() or close()
            self._universe_changed.clear()
            await _first_of(self._universe_changed, self._closed)
            if self._realtime or self._sim_ns is None:
                self._sim_ns = max(now, self._clock.now_ns())
            return
        self._sim_ns = self._boundary_ns
        if self._realtime:
            await self._wait_until(self._boundary_ns)

    def _active_at(self, now: int) -> list[SymbolWalk]:
        valid = self._active_valid_from >= 0 and now >= self._active_valid_from
        if valid and (self._boundary_ns is None or now < self._boundary_ns):
            return self._active
        gated = self._stocks_follow_calendar and any(
            w.instrument.asset_class is AssetClass.STOCK for w in self._walks.values()
        )
        stocks_open = True
        self._boundary_ns = None
        if gated:
            calendar = self._nyse(now)
            stocks_open = calendar.is_open(now)
            self._boundary_ns = calendar.next_close(now) if stocks_open else calendar.next_open(now)
        self._active = [
            self._walks[s]
            for s in self._symbols
            if stocks_open or self._walks[s].instrument.asset_class is not AssetClass.STOCK
        ]
        self._active_valid_from = now
        return self._active

    def _nyse(self, now: int) -> NyseCalendar:
        if self._calendar is None:
            self._calendar = NyseCalendar(today=ns_to_datetime(now).date())
        return self._calendar

    async def _wait_until(self, target_ns: int) -> bool:
        """Sleep until the clock reaches ``target_ns``; False if closed meanwhile."""
        delay = (target_ns - self._clock.now_ns()) / NANOS_PER_SECOND
        if delay <= 0:
            return not self._closed.is_set()
        if delay < _LONG_WAIT_S:
            await self._sleep(delay)
        else:
            closing = asyncio.ensure_future(self._closed.wait())
            sleeping = asyncio.ensure_future(self._sleep(delay))
            await asyncio.wait({closing, sleeping}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (closing, sleeping):
                waiter.cancel()
        return not self._closed.is_set()


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
