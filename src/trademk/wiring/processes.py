"""Long-running processes other than the API: ingestion on its own."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

from trademk.config import Settings
from trademk.domain.calendar import NyseCalendar
from trademk.engine.clock import LiveClock, utc_now
from trademk.wiring.market import MarketDataStack

log = structlog.get_logger(__name__)


async def wait_for_shutdown() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def run_ingest(settings: Settings, status_every: float = 30.0) -> None:
    """Feed → tick store, nothing else, until interrupted; logs progress periodically."""
    clock = LiveClock()
    stack = MarketDataStack(settings, clock, NyseCalendar(utc_now(clock).date()))
    await stack.start()
    reporter = asyncio.create_task(_report(stack, status_every))
    try:
        await wait_for_shutdown()
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        await stack.stop()


async def _report(stack: MarketDataStack, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        pipeline = stack.pipeline.status() if stack.pipeline else {}
        log.info(
            "ingest status",
            received=pipeline.get("received"),
            written=pipeline.get("written"),
            pending=pipeline.get("pending"),
            lag_p99_s=pipeline.get("lag_p99_s"),
        )
