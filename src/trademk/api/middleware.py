"""ASGI middleware: request ids and access logging."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = structlog.get_logger("trademk.access")


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` if well-formed).

    The id is bound into the structlog context for every log line of the
    request, echoed in the response header, and the request is logged once
    with its status and duration.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = self._incoming_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
            structlog.contextvars.unbind_contextvars("request_id")

    @staticmethod
    def _incoming_id(scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == REQUEST_ID_HEADER.encode():
                text = value.decode("latin-1")
                return text if _VALID_REQUEST_ID.match(text) else None
        return None
