"""Service root and health endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from trademk import __version__
from trademk.api.dependencies import PlatformDep

router = APIRouter()


@router.get("/", summary="Service name and version")
async def root(platform: PlatformDep) -> dict[str, Any]:
    return {
        "name": platform.settings.app_name,
        "version": __version__,
        "docs": "/docs",
        "health": "/api/health",
    }


@router.get("/api/health", summary="Liveness: the process answers")
async def health(platform: PlatformDep) -> dict[str, Any]:
    return platform.health.basic()


@router.get(
    "/api/health/detailed",
    summary="Readiness: every dependency and component checked, 503 when one fails",
    responses={503: {"description": "A dependency or component is unhealthy"}},
)
async def health_detailed(platform: PlatformDep) -> JSONResponse:
    healthy, report = await platform.health.detailed()
    return JSONResponse(report, status_code=200 if healthy else 503)
