"""Dropping market data a stream repeats, typically replayed after a reconnect."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from trademk.domain.market import Bar, Tick, TickKind


class RecentKeys:
    """A bounded set remembering the last ``capacity`` keys added."""

    __slots__ = ("_capacity", "_order", "_seen")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._order: deque[Hashable] = deque()
        self._seen: set[Hashable] = set()

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; False when it was already remembered."""
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._capacity:
            self._seen.discard(self._order.popleft())
        return True


class RepeatFilter:
    """Tells new ticks and bars from repeats of ones already seen.

    A trade repeats when its symbol's last ``window`` trades include one with
    the same trade id and event time (SIP trade ids are assigned per reporting
    exchange, so the id alone may collide; id plus time does not). A bar
    repeats when it is not newer than the last bar of its symbol. Quotes carry
    no id and always pass.
    """

    def __init__(self, window: int = 512) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self._window = window
        self._trades: dict[str, RecentKeys] = {}
        self._last_bar_ts: dict[str, int] = {}

    def is_new(self, item: Tick | Bar) -> bool:
        """True the first time an item is seen (and remembers it)."""
        if isinstance(item, Bar):
            last = self._last_bar_ts.get(item.symbol)
            if last is not None and item.ts <= last:
                return False
            self._last_bar_ts[item.symbol] = item.ts
            return True
        if item.kind is not TickKind.TRADE or item.seq is None:
            return True
        recent = self._trades.get(item.symbol)
        if recent is None:
            recent = self._trades[item.symbol] = RecentKeys(self._window)
        return recent.add((item.seq, item.ts))
