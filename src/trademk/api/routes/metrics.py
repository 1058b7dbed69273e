"""Prometheus metrics endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from trademk.api.dependencies import PlatformDep
from trademk.api.security import PublicDep

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    dependencies=[PublicDep],
    response_class=Response,
    summary="Prometheus metrics of this process (text exposition format)",
    responses={
        200: {
            "description": "Metrics in the Prometheus text format (OpenMetrics if asked for)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request, platform: PlatformDep) -> Response:
    """Open like the health probes, so Prometheus scrapes it without credentials.

    It carries counts and latencies only, never secrets or account data; keep
    it off the public internet at the reverse proxy (docs/deployment.md).
    """
    body, content_type = platform.metrics.exposition(request.headers.get("accept"))
    return Response(content=body, headers={"Content-Type": content_type})
