"""Shared helpers for ingest tests (also used by the PostgreSQL outage test)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from trademk.domain.market import Tick, TickKind
from trademk.ingest.pipeline import IngestPipeline

PipelineFactory = Callable[..., IngestPipeline]

START_NS = 1_700_000_000 * 1_000_000_000


def make_ticks(count: int, *, first: int = 0, received: int = START_NS) -> list[Tick]:
    """Distinct trades numbered by ``seq`` from ``first``."""
    return [
        Tick(
            symbol="BTCUSDT",
            exchange="TEST",
            kind=TickKind.TRADE,
            ts=START_NS + i,
            price=100.0 + i,
            qty=1.0,
            seq=i,
            received=received,
        )
        for i in range(first, first + count)
    ]


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


def spill_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spill"))
