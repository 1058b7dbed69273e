"""The long-running processes: the whole platform, the API alone, and the workers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import redis.asyncio as aioredis
import structlog
import uvicorn

from trademk.config import ConfigError, Settings
from trademk.domain.calendar import NyseCalendar
from trademk.engine.clock import LiveClock, utc_now
from trademk.observability.metrics import Metrics
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
    metrics = Metrics()
    redis = aioredis.from_url(settings.redis_url) if settings.redis_url else None
    stack = MarketDataStack(
        settings,
        clock,
        NyseCalendar(utc_now(clock).date()),
        metrics=metrics,
        # With Redis, the other processes take their prices from this one.
        publish_to=redis,
    )
    try:
        await stack.start()
    except BaseException:
        if redis is not None:
            await redis.aclose()
        raise
    server = _serve_metrics(metrics, settings)
    reporter = asyncio.create_task(_report(stack, status_every))
    try:
        await wait_for_shutdown()
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        if server is not None:
            server.shutdown()
        await stack.stop()
        if redis is not None:
            await redis.aclose()


def _serve_metrics(metrics: Metrics, settings: Settings) -> WSGIServer | None:
    """Serve /metrics on HOST:METRICS_PORT for a worker process, when the port is set."""
    if settings.metrics_port is None:
        return None
    server = metrics.serve(settings.host, settings.metrics_port)
    log.info("metrics served", url=f"http://{settings.host}:{server.server_port}/metrics")
    return server


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


def require_shared_storage(settings: Settings, role: str) -> None:
    """Split processes share state: refuse the embedded, single-process defaults.

    ``role`` is ``api`` or a worker role (``ingest``, ``execution``, ``strategies``).
    """
    command = "trademk api" if role == "api" else f"trademk worker --role {role}"
    problems = []
    if not settings.redis_url:
        problems.append(
            "REDIS_URL is not set (the processes exchange prices, signals and events over Redis)"
        )
    if role != "ingest" and settings.app_database_url.startswith("sqlite"):
        problems.append(
            "DATABASE_URL is SQLite (the processes share orders, fills and strategies "
            "through PostgreSQL)"
        )
    if settings.tick_store_url.startswith("duckdb"):
        problems.append(
            "TICKSTORE_URL is DuckDB, which admits one writing process per file "
            "(use postgresql://... or questdb://...)"
        )
    if problems:
        raise ConfigError(
            f"`{command}` runs next to other processes and needs shared storage:\n  - "
            + "\n  - ".join(problems)
            + "\nFor one process on embedded storage use `trademk run`."
        )


async def run_worker(settings: Settings, role: str) -> None:
    """An execution or strategies worker: no HTTP server, metrics on METRICS_PORT."""
    from trademk.runtime import Platform

    platform = Platform(settings, role=role)
    await platform.start()
    server = _serve_metrics(platform.metrics, settings)
    try:
        await wait_for_shutdown()
    finally:
        if server is not None:
            server.shutdown()
        await platform.stop()


class _QuietExitServer(uvicorn.Server):
    """uvicorn's server, minus re-raising SIGINT/SIGTERM after it stopped gracefully.

    uvicorn raises the signal again once it has shut down, so the process dies
    of it (status 130 for Ctrl-C). Ctrl-C is how a user stops Trademk: after a
    clean stop the command exits 0. A second Ctrl-C still forces the exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()  # uvicorn 0.54: the signals it would re-raise


async def serve_api(settings: Settings, role: str = "all") -> None:
    """Start the platform (``all``) or the API process (``api``), then serve until Ctrl-C.

    Starting the platform before the server means a startup failure (a tick
    store held by another process, a broker refusing the credentials) ends
    the command with a clear message instead of a server traceback.
    """
    from trademk.api.app import create_app
    from trademk.runtime import Platform
    from trademk.storage.ticks import TickStoreError

    platform = Platform(settings, role=role)
    try:
        await platform.start()
    except (TickStoreError, OSError) as err:
        raise ConfigError(f"cannot start the platform: {err}") from None
    server = _QuietExitServer(
        uvicorn.Config(
            create_app(platform=platform),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    try:
        await server.serve()
    finally:
        await platform.stop()
