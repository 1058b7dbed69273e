"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from trademk import __version__
from trademk.api.errors import install_error_handlers
from trademk.api.middleware import RequestIdMiddleware
from trademk.api.routes import health
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
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(RequestIdMiddleware)
    if platform is not None:
        app.state.platform = platform
    install_error_handlers(app)
    app.include_router(health.router, tags=["health"])
    return app
