"""ASGI middleware: HTTP request latency into the platform's metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from trademk.runtime import Platform

UNMATCHED_ROUTE: Final = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/trading/orders/{order_id}``).

    The raw URL would make one time series per id or symbol; the template keeps
    the label set bounded. Requests that matched no route share one label.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Observes each HTTP request's duration by method, route template and status.

    The platform (and so the metrics and the clock) is looked up on the app at
    request time, because the lifespan may attach it after the app is built.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        owner = scope.get("app")
        platform: Platform | None = getattr(owner.state, "platform", None) if owner else None
        if scope["type"] != "http" or platform is None:
            await self.app(scope, receive, send)
            return
        clock = platform.clock
        started = clock.monotonic_ns()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = (clock.monotonic_ns() - started) / 1e9
            platform.metrics.observe_http(scope["method"], route_template(scope), status, elapsed)
