"""Clocks: the only place the platform reads the time (DESIGN.md §6.5)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

from trademk.domain.market import NANOS_PER_SECOND


class Clock(Protocol):
    def now_ns(self) -> int:
        """Wall-clock UTC time in integer nanoseconds since the epoch."""
        ...

    def monotonic_ns(self) -> int:
        """A monotonic counter for durations and latency measurement."""
        ...


class LiveClock:
    """Real time."""

    def now_ns(self) -> int:
        return time.time_ns()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


class SimClock:
    """Time that moves only when told to; used by backtests and tests."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def monotonic_ns(self) -> int:
        return self._now

    def set(self, ns: int) -> None:
        if ns < self._now:
            raise ValueError("a simulated clock never goes backwards")
        self._now = ns

    def advance(self, ns: int) -> None:
        self.set(self._now + ns)


def ns_to_datetime(ns: int) -> datetime:
    """UTC datetime for a nanosecond timestamp (microsecond precision)."""
    return datetime.fromtimestamp(ns // 1000 / 1_000_000, tz=UTC)


def datetime_to_ns(value: datetime) -> int:
    """Nanoseconds for a datetime; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NANOS_PER_SECOND + delta.microseconds * 1000


def utc_now(clock: Clock) -> datetime:
    return ns_to_datetime(clock.now_ns())
