"""Error responses: always JSON ``{"detail": ...}``, never a traceback."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from trademk.domain.errors import TransientError
from trademk.engine.control import NoWorkerAnswered
from trademk.wiring.trading_desk import DeskUnavailable

log = structlog.get_logger(__name__)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return JSONResponse(
        status_code=500,
        content={"detail": "internal server error", "request_id": request_id},
    )


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Something the request needs cannot answer now (a worker, Redis): 503 saying what."""
    log.warning("service unavailable", path=request.url.path, reason=str(exc))
    return JSONResponse(status_code=503, content={"detail": str(exc)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unhandled)
    app.add_exception_handler(DeskUnavailable, _unavailable)
    app.add_exception_handler(NoWorkerAnswered, _unavailable)
    # A dependency (Redis, a venue) failing for a while: the client may retry.
    app.add_exception_handler(TransientError, _unavailable)


def unprocessable(*problems: tuple[tuple[str, ...], str]) -> HTTPException:
    """A 422 in FastAPI's validation format: ``detail`` lists ``{loc, msg, type}``.

    One shape for every 422 the API answers, whether pydantic or a service
    found the problem, so clients parse a single format.
    """
    return HTTPException(
        422,
        detail=[
            {"loc": list(loc), "msg": message, "type": "value_error"} for loc, message in problems
        ],
    )
