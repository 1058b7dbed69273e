"""ReplayFeed: stored or file ticks played back in timestamp order.

Sources:

* a :class:`TickStore` — ticks of the subscribed symbols with
  ``start <= ts < end``. ``TickStore.ticks()`` answers newest first with a
  limit, so the feed walks forward through the range in adaptive time windows
  (halved when a window is full, widened when sparse) and merges the symbols.
* a CSV or Parquet file whose columns are :class:`Tick` fields (``symbol``,
  ``ts`` and ``price`` required; ``ts`` as integer ns or ISO-8601 datetimes),
  see :mod:`trademk.venues.replay.files`.

``speed`` scales time: 1.0 is real time, 10 ten times faster, 0 as fast as
possible. ``restamp_received`` replaces ``received`` with the clock's time at
emission.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick
from trademk.domain.ports import TickStore
from trademk.engine.clock import Clock, datetime_to_ns
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.venues.reconnect import FeedCounters, feed_status
from trademk.venues.replay.files import load_tick_file

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_PAGE_SIZE: Final = 5000
_INITIAL_WINDOW_NS: Final = 60 * NANOS_PER_SECOND
_YIELD_EVERY: Final = 512


class ReplayFeed:
    """Replays history as a :class:`MarketDataFeed`; the stream ends with the data."""

    def __init__(
        self,
        clock: Clock,
        *,
        store: TickStore | None = None,
        path: str | Path | None = None,
        symbols: Sequence[str] = (),
        start: int | datetime | None = None,
        end: int | datetime | None = None,
        speed: float = 1.0,
        restamp_received: bool = False,
        exchange: str | None = None,
        default_exchange: str = "REPLAY",
        page_size: int = DEFAULT_PAGE_SIZE,
        sleep: Sleep = asyncio.sleep,
        name: str = "replay",
    ) -> None:
        if (store is None) == (path is None):
            raise ValueError("give exactly one source: store= or path=")
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 replays as fast as possible)")
        if page_size <= 1:
            raise ValueError("page_size must be > 1")
        self.name = name
        self._clock = clock
        self._store = store
        self._path = Path(path) if path is not None else None
        self._symbols: list[str] = []
        self._start = _as_ns(start)
        self._end = _as_ns(end)
        if self._start is not None and self._end is not None and self._end <= self._start:
            raise ValueError("end must be after start")
        self._speed = speed
        self._restamp = restamp_received
        self._exchange = exchange
        self._default_exchange = default_exchange
        self._page_size = page_size
        self._sleep = sleep
        self._lifecycle = Lifecycle(name)
        self._counters = FeedCounters()
        self._closed = False
        self._streaming = False
        self._add_symbols(symbols)

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Replay these symbols (files: no symbols means every symbol in the file)."""
        self._add_symbols(symbols)

    def _add_symbols(self, symbols: Sequence[str]) -> None:
        if isinstance(symbols, str):
            raise TypeError("subscribe() takes a sequence of symbols, not one string")
        for symbol in symbols:
            if symbol not in self._symbols:
                self._symbols.append(symbol)

    def stream(self) -> AsyncIterator[Tick | Bar]:
        """Ticks in timestamp order, paced by ``speed``; ends after the last one."""
        if self._streaming:
            raise RuntimeError(f"{self.name}: stream() is already running")
        if self._store is not None and not self._symbols:
            raise ValueError("replaying from a store needs symbols: call subscribe() first")
        self._streaming = True
        return self._play()

    def status(self) -> dict[str, Any]:
        self._counters.extra.update(speed=self._speed, source=self._source_name())
        return feed_status(
            self.name,
            self._lifecycle,
            self._counters,
            self._lifecycle.state is ComponentState.RUNNING,
            list(self._symbols),
        )

    async def close(self) -> None:
        self._closed = True
        self._lifecycle.to(ComponentState.STOPPED, "closed")

    def _source_name(self) -> str:
        return str(self._path) if self._path is not None else type(self._store).__name__

    # -- playback ---------------------------------------------------------

    async def _play(self) -> AsyncIterator[Tick | Bar]:
        if self._lifecycle.state is ComponentState.READY:
            self._lifecycle.to(ComponentState.RUNNING)
        first_ts: int | None = None
        wall_start = 0
        emitted = 0
        async for tick in self._source():
            if self._closed:
                break
            if first_ts is None:
                first_ts, wall_start = tick.ts, self._clock.now_ns()
            if self._speed > 0:
                target = wall_start + int((tick.ts - first_ts) / self._speed)
                delay = (target - self._clock.now_ns()) / NANOS_PER_SECOND
                if delay > 0:
                    await self._sleep(delay)
            elif emitted % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            if self._restamp:
                tick = msgspec.structs.replace(tick, received=self._clock.now_ns())
            self._counters.ticks += 1
            self._counters.messages += 1
            self._counters.last_message_ns = tick.ts
            emitted += 1
            yield tick
        if not self._closed:
            self._lifecycle.to(ComponentState.STOPPED, "replay finished")
            self._closed = True

    def _source(self) -> AsyncIterator[Tick]:
        if self._path is not None:
            return self._file_ticks(self._path)
        return self._store_ticks()

    async def _file_ticks(self, path: Path) -> AsyncIterator[Tick]:
        ticks = await asyncio.to_thread(
            load_tick_file,
            path,
            symbols=self._symbols,
            start=self._start,
            end=self._end,
            exchange=self._exchange,
            default_exchange=self._default_exchange,
        )
        for tick in ticks:
            yield tick

    async def _store_ticks(self) -> AsyncIterator[Tick]:
        """k-way merge of the per-symbol ascending streams."""
        end = self._end if self._end is not None else self._clock.now_ns() + 1
        streams = [self._symbol_ticks(symbol, end) for symbol in self._symbols]
        heap: list[tuple[int, int, Tick]] = []
        for index, stream in enumerate(streams):
            first = await anext(stream, None)
            if first is not None:
                heap.append((first.ts, index, first))
        heapq.heapify(heap)
        while heap:
            _, index, tick = heap[0]
            yield tick
            following = await anext(streams[index], None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (following.ts, index, following))

    async def _symbol_ticks(self, symbol: str, end: int) -> AsyncIterator[Tick]:
        """One symbol's ticks in ``[start, end)``, oldest first, page by page."""
        assert self._store is not None
        cursor = self._start if self._start is not None else 0
        window = _INITIAL_WINDOW_NS
        while cursor < end:
            upper = min(cursor + window, end)
            page = await self._fetch(symbol, cursor, upper)
            if page is None:  # window too full: narrow it
                window = max(1, (upper - cursor) // 2)
                continue
            for tick in reversed(page):
                yield tick
            cursor = upper
            if len(page) < self._page_size // 4:
                window *= 2

    async def _fetch(self, symbol: str, lower: int, upper: int) -> list[Tick] | None:
        """Ticks in ``[lower, upper)`` newest first, or None if the page was full.

        A single nanosecond holding more than a page is fetched with a growing limit.
        """
        assert self._store is not None
        limit = self._page_size
        while True:
            page = await self._store.ticks(
                symbol, start=lower, end=upper, limit=limit, exchange=self._exchange
            )
            if len(page) < limit:
                return page
            if upper - lower > 1:
                return None
            limit *= 2


def _as_ns(value: int | datetime | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return datetime_to_ns(value)
