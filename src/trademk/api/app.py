"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from trademk import __version__
from trademk.api.errors import install_error_handlers
from trademk.api.hardening import install_hardening
from trademk.api.metrics_middleware import HttpMetricsMiddleware
from trademk.api.middleware import RequestIdMiddleware
from trademk.api.routes import (
    alerts,
    api_keys,
    audit,
    auth,
    backtests,
    dashboard,
    health,
    market_data,
    metrics,
    risk,
    strategies,
    trading,
    users,
    ws,
)
from trademk.api.security import install_security
from trademk.config import Settings, load_settings
from trademk.runtime import Platform


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> FastAPI:
    """Build the API. The lifespan starts the platform (or the one given) and stops it."""
    settings = settings or (platform.settings if platform else load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = platform or Platform(settings)
        app.state.platform = running
        await running.start()
        try:
            yield
        finally:
            await running.stop()

    app = FastAPI(
        title=settings.app_name,
        version=__version__,
        description="Autonomous trading platform: market data, strategies, risk, execution.",
        lifespan=lifespan,
    )
    install_security(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        # Credentials are never combined with a wildcard origin.
        allow_credentials=settings.cors_allow_credentials and "*" not in settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    install_hardening(app, settings)
    app.add_middleware(RequestIdMiddleware)
    # Outermost, so the latency covers everything the API does for the request.
    app.add_middleware(HttpMetricsMiddleware)
    if platform is not None:
        app.state.platform = platform
    install_error_handlers(app)
    app.include_router(health.router, tags=["health"])
    app.include_router(metrics.router)
    for router in (
        auth.router,
        users.router,
        api_keys.router,
        audit.router,
        market_data.router,
        trading.router,
        risk.router,
        alerts.router,
        strategies.router,
        backtests.router,
        ws.router,
        dashboard.router,
    ):
        app.include_router(router)
    return app
