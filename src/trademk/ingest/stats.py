"""Counters and receive→durable lag tracking for the ingest pipeline."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class IngestCounters:
    """Cumulative counters of one pipeline run (ticks unless named batches)."""

    received: int = 0
    written: int = 0
    batches: int = 0
    write_errors: int = 0
    already_committed_batches: int = 0
    spilled_batches: int = 0
    spilled_ticks: int = 0
    spill_errors: int = 0
    recovered_batches: int = 0
    recovered_ticks: int = 0
    last_error: str | None = None


class LagWindow:
    """The most recent ``size`` lag samples (seconds) and their percentiles."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("lag_window must be positive")
        self._samples: deque[float] = deque(maxlen=size)

    def extend(self, lags: Sequence[float]) -> None:
        self._samples.extend(lags)

    def percentiles(self) -> dict[str, float | None]:
        """``lag_p50_s``, ``lag_p95_s``, ``lag_p99_s`` (nearest rank); None when empty."""
        ordered = sorted(self._samples)
        return {f"lag_p{q}_s": nearest_rank(ordered, q) for q in (50, 95, 99)}


def nearest_rank(ordered: Sequence[float], percentile: int) -> float | None:
    """The nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return None
    rank = max(1, -(-percentile * len(ordered) // 100))  # ceil(p * n / 100)
    return ordered[rank - 1]
