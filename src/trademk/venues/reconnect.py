"""Shared reconnect machinery for streaming adapters: backoff and counters."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from trademk.engine.lifecycle import Lifecycle


class ExponentialBackoff:
    """Exponential backoff with full jitter and no cap on attempts.

    Delay for attempt n is uniform in ``[c/2, c]`` with
    ``c = min(maximum, initial * factor**n)`` ("equal jitter"): it spreads
    reconnect storms yet never retries at once. ``reset()`` after a healthy
    connection.
    """

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class FeedCounters:
    """Counters every feed reports through ``status()``."""

    messages: int = 0
    ticks: int = 0
    bars: int = 0
    reconnects: int = 0
    parse_errors: int = 0
    duplicates: int = 0
    last_message_ns: int | None = None
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def feed_status(
    name: str, lifecycle: Lifecycle, counters: FeedCounters, connected: bool, symbols: list[str]
) -> dict[str, Any]:
    """The status dict shape shared by all feeds."""
    data = asdict(counters)
    extra = data.pop("extra")
    return {
        "name": name,
        "state": str(lifecycle.state),
        "reason": lifecycle.reason,
        "connected": connected,
        "symbols": symbols,
        **data,
        **extra,
    }
