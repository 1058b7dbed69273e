"""FastAPI security: who is calling, may they, and how often.

Every route declares its access rule through one dependency::

    @router.post("/signal", status_code=202)
    async def signal(body: SignalIn, principal: TraderDep, audit: AuditDep) -> ...

``ViewerDep``/``TraderDep``/``AdminDep`` (and ``require(role, scope=...)`` for
other combinations) authenticate the caller by ``Authorization: Bearer
<access token | API key>`` or ``X-API-Key``, apply the rate limits, check the
role and the key's scopes, and hand the route the :class:`Principal`.
``MarketDataDep`` is the same as ``ViewerDep`` but lets anonymous callers in
when PUBLIC_MARKET_DATA=true. ``PublicDep`` marks a route open to anyone.

The rule is readable from the route itself (:func:`route_access`), which the
OpenAPI schema and the route-matrix test use. A route that declares nothing
is not left open: an app-wide guard treats it as admin-only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocketException, status
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, APIWebSocketRoute, RouteContext, iter_route_contexts
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from trademk.security.api_keys import looks_like_api_key
from trademk.security.audit import Actor, AuditAction, AuditLog, AuditOutcome
from trademk.security.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from trademk.security.passwords import WeakPasswordError
from trademk.security.principal import Principal
from trademk.security.rate_limit import RateLimit, RateLimitedError
from trademk.security.roles import AuthMethod, Requirement, Role, Scope
from trademk.security.services import SecurityServices
from trademk.security.store import StoreUnavailableError

API_KEY_HEADER = "x-api-key"
# Open without credentials (besides /docs and /openapi.json, which are not API routes).
# /api/health/detailed stays open for load-balancer and orchestrator readiness probes.
ANONYMOUS_PATHS = frozenset({"/", "/api/health", "/api/health/detailed"})
UNDECLARED_REQUIREMENT = Requirement.of(Role.ADMIN)
_UNSET = object()


def security_services(connection: HTTPConnection) -> SecurityServices:
    services: SecurityServices = connection.app.state.platform.security
    return services


def client_ip(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def _refuse(connection: HTTPConnection, code: int, message: str, **headers: str) -> Exception:
    if connection.scope["type"] == "websocket":
        return WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason=message)
    if code == status.HTTP_401_UNAUTHORIZED:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return HTTPException(code, detail=message, headers=headers or None)


def _credential(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization")
    api_key = connection.headers.get(API_KEY_HEADER)
    bearer = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _refuse(connection, 401, "use 'Authorization: Bearer <token or API key>'")
        bearer = value.strip()
    if bearer and api_key and bearer != api_key:
        raise _refuse(connection, 401, "send one credential, not two")
    if bearer or api_key:
        return bearer or api_key
    if connection.scope["type"] == "websocket":
        # Browsers cannot set headers on a WebSocket handshake.
        query = connection.query_params
        return query.get("access_token") or query.get("token")
    return None


async def _authenticate(connection: HTTPConnection) -> Principal | None:
    cached = getattr(connection.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    credential = _credential(connection)
    principal = None
    if credential is not None:
        principal = await _principal_for(connection, credential)
    connection.state.principal = principal
    return principal


async def _principal_for(connection: HTTPConnection, credential: str) -> Principal:
    services = security_services(connection)
    try:
        if looks_like_api_key(credential):
            return await services.api_keys.authenticate(credential)
        claims = await services.session_tokens.verify_access(credential)
        user = await services.users.active_user(claims.user_id)
        if user is None:
            raise AuthenticationError("user unknown or inactive")
    except AuthenticationError as err:
        raise _refuse(connection, 401, f"not authenticated: {err}") from None
    except StoreUnavailableError:
        raise _refuse(connection, 503, "security store unavailable") from None
    return Principal(
        user_id=user.id,
        email=user.email,
        role=user.role,
        auth_method=AuthMethod.JWT,
        token_id=claims.token_id,
    )


async def _limit(connection: HTTPConnection, bucket: str, rule: RateLimit) -> None:
    """Count this request once in ``bucket``; 429 with Retry-After when over ``rule``."""
    counted: set[str] | None = getattr(connection.state, "rate_limited_buckets", None)
    if counted is None:
        counted = connection.state.rate_limited_buckets = set()
    if bucket in counted:
        return
    counted.add(bucket)
    try:
        await security_services(connection).limiter.hit(bucket, rule)
    except RateLimitedError as err:
        raise _refuse(connection, 429, str(err), **{"Retry-After": str(err.retry_after)}) from None


async def _limit_address(connection: HTTPConnection) -> None:
    await _limit(connection, f"ip:{client_ip(connection)}", security_services(connection).ip_limit)


async def _limit_principal(connection: HTTPConnection, principal: Principal) -> None:
    who = f"key:{principal.key_id}" if principal.is_api_key else f"user:{principal.user_id}"
    await _limit(connection, who, security_services(connection).principal_limit)


def _denial(principal: Principal, requirement: Requirement) -> str:
    if requirement.sessions_only and principal.is_api_key:
        return "this action needs a login session; API keys cannot do it"
    if not principal.has_role(requirement.role):
        return f"this action needs the {requirement.role.value} role"
    return f"this API key lacks the {requirement.scope.value} scope"


async def authorize(connection: HTTPConnection, requirement: Requirement) -> Principal | None:
    """The caller if they meet ``requirement`` (None: anonymous on an open route).

    401 without valid credentials, 403 when the role or key scope falls short,
    429 over a rate limit.
    """
    await _limit_address(connection)
    principal = await _authenticate(connection)
    if principal is None:
        public = requirement.public_when is not None and bool(
            getattr(security_services(connection).settings, requirement.public_when, False)
        )
        if not public:
            raise _refuse(connection, 401, "authentication required")
        return None
    await _limit_principal(connection, principal)
    if not principal.satisfies(requirement):
        raise _refuse(connection, 403, _denial(principal, requirement))
    return principal


class RequireAccess:
    """The dependency a route declares: its :class:`Requirement` is readable from it."""

    def __init__(self, requirement: Requirement) -> None:
        self.requirement = requirement

    def __repr__(self) -> str:
        return f"RequireAccess({self.requirement})"

    async def __call__(self, connection: HTTPConnection) -> Principal:
        principal = await authorize(connection, self.requirement)
        if principal is None:  # only reachable for routes with public_when
            raise _refuse(connection, 401, "authentication required")
        return principal


class OptionalAccess(RequireAccess):
    """Like RequireAccess, but a route open by setting gets None for anonymous callers."""

    async def __call__(self, connection: HTTPConnection) -> Principal | None:  # type: ignore[override]
        return await authorize(connection, self.requirement)


class PublicAccess:
    """Marks a route open to anyone; still rate-limited per client address."""

    async def __call__(self, connection: HTTPConnection) -> None:
        await _limit_address(connection)


def require(
    role: Role, scope: Scope | None = None, *, sessions_only: bool = False
) -> RequireAccess:
    """The dependency for ``role`` (and ``scope`` for API keys, by default the role's)."""
    return RequireAccess(Requirement.of(role, scope, sessions_only=sessions_only))


public_access = PublicAccess()
viewer_access = require(Role.VIEWER)
trader_access = require(Role.TRADER)
admin_access = require(Role.ADMIN)
session_access = require(Role.VIEWER, sessions_only=True)
market_data_access = OptionalAccess(Requirement.of(Role.VIEWER, public_when="public_market_data"))

ViewerDep = Annotated[Principal, Depends(viewer_access)]
TraderDep = Annotated[Principal, Depends(trader_access)]
AdminDep = Annotated[Principal, Depends(admin_access)]
SessionDep = Annotated[Principal, Depends(session_access)]
MarketDataDep = Annotated[Principal | None, Depends(market_data_access)]
PublicDep = Depends(public_access)


def _declared(dependant: Any) -> RequireAccess | PublicAccess | None:
    for dependency in getattr(dependant, "dependencies", ()):
        if isinstance(dependency.call, RequireAccess | PublicAccess):
            return dependency.call
        found = _declared(dependency)
        if found is not None:
            return found
    return None


def declared_access(route: BaseRoute | RouteContext) -> RequireAccess | PublicAccess | None:
    """The access dependency a route declares (on itself, its router or its inclusion)."""
    return _declared(getattr(route, "dependant", None))


def route_access(route: BaseRoute | RouteContext) -> Requirement | None:
    """The rule enforced on ``route``; None means open to anonymous callers."""
    declared = declared_access(route)
    if isinstance(declared, RequireAccess):
        return declared.requirement
    if isinstance(declared, PublicAccess) or getattr(route, "path", None) in ANONYMOUS_PATHS:
        return None
    return UNDECLARED_REQUIREMENT


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One API route of an app (as mounted, prefixes included) and its access rule."""

    path: str
    methods: frozenset[str]
    websocket: bool
    requirement: Requirement | None
    declared: bool
    route: RouteContext


def route_rules(routes: Sequence[BaseRoute]) -> list[RouteRule]:
    """Every API and WebSocket route under ``routes`` (e.g. ``app.routes``) with its rule."""
    rules = []
    for context in iter_route_contexts(routes):
        original = context.original_route
        if not isinstance(original, APIRoute | APIWebSocketRoute):
            continue
        rules.append(
            RouteRule(
                path=str(context.path_format or context.path),
                methods=frozenset(context.methods or ()),
                websocket=isinstance(original, APIWebSocketRoute),
                requirement=route_access(context),
                declared=declared_access(context) is not None or context.path in ANONYMOUS_PATHS,
                route=context,
            )
        )
    return rules


def _declares_rule(app: Any, route: BaseRoute) -> bool:
    """Whether the matched ``route`` declares a rule; cached per app."""
    cache: dict[int, bool] | None = getattr(app.state, "access_declared_by_route", None)
    if cache is None:
        cache = app.state.access_declared_by_route = {}
    if id(route) not in cache:
        for rule in route_rules(app.routes):
            for candidate in (rule.route.original_route, rule.route.route):
                cache[id(candidate)] = rule.declared
        cache.setdefault(id(route), declared_access(route) is not None)
    return cache[id(route)]


async def enforce_undeclared(connection: HTTPConnection) -> None:
    """App-wide guard: a route that declares no rule is admin-only, never open."""
    route = connection.scope.get("route")
    # The anonymous paths count as declared (judged on the mounted path, prefix included).
    if route is None or _declares_rule(connection.app, route):
        return
    await authorize(connection, UNDECLARED_REQUIREMENT)


class RequestAuditor:
    """Records audit entries for the current request's caller and request id."""

    def __init__(self, audit: AuditLog, request: Request) -> None:
        self._audit = audit
        self._request = request

    async def record(
        self,
        action: AuditAction | str,
        *,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> None:
        principal = getattr(self._request.state, "principal", None)
        if actor is None:
            actor = Actor.of(principal) if principal is not None else Actor.anonymous()
        await self._audit.record(
            action,
            actor=actor,
            outcome=outcome,
            target=target,
            detail=detail,
            request_id=getattr(self._request.state, "request_id", None),
            ip=client_ip(self._request),
        )


def get_auditor(request: Request) -> RequestAuditor:
    return RequestAuditor(security_services(request).audit, request)


AuditDep = Annotated[RequestAuditor, Depends(get_auditor)]


def install_security(app: FastAPI) -> None:
    """Guard undeclared routes, map security errors to responses, document auth in OpenAPI.

    Call right after creating the app, before including routers.
    """
    app.router.dependencies.append(Depends(enforce_undeclared))
    for error_type, code in _ERROR_STATUS.items():
        app.add_exception_handler(error_type, _error_response(code))
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_security(plain_openapi(), app.routes)
        return app.openapi_schema or plain_openapi()

    app.openapi = openapi  # type: ignore[method-assign]


_ERROR_STATUS: dict[type[Exception], int] = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    WeakPasswordError: 422,
    RateLimitedError: 429,
    StoreUnavailableError: 503,
}


def _error_response(code: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if code == 422:
            return _invalid_input(exc)
        headers = {}
        if code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(exc.retry_after)
        message = "security store unavailable" if code == 503 else str(exc)
        return JSONResponse({"detail": message}, status_code=code, headers=headers)

    return handle


def _invalid_input(exc: Exception) -> Response:
    """422 in the shape request validation uses, so clients parse one format."""
    # The other 422 error is a password that fails the policy.
    location = list(exc.location) if isinstance(exc, InvalidInputError) else ["body", "password"]
    error = {"type": "value_error", "loc": location, "msg": str(exc)}
    return JSONResponse({"detail": [error]}, status_code=422)


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from POST /api/v1/auth/login, or an API key",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_AUTH_RESPONSES = {
    "401": "Missing, invalid or expired credentials",
    "403": "The role or the API key's scopes do not allow this",
    "429": "Rate limit exceeded; see Retry-After",
}


def _error_response_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each with the ``{"detail": ...}`` body."""
    return {code: _error_response_doc(text) for code, text in descriptions.items()}


def _document_operation(operation: dict[str, Any], requirement: Requirement | None) -> None:
    responses = operation.setdefault("responses", {})
    responses.setdefault("429", _error_response_doc(_AUTH_RESPONSES["429"]))
    if "requestBody" in operation:
        responses.setdefault("400", _error_response_doc("The body is not valid JSON"))
        responses.setdefault("413", _error_response_doc("The body is too large"))
    if requirement is None:
        operation["security"] = []
        operation["x-required-role"] = "public"
        return
    schemes: list[dict[str, list[str]]] = [{"bearer": []}]
    if not requirement.sessions_only:
        schemes.append({"apiKey": []})
    if requirement.public_when:
        schemes.append({})
        operation["x-public-when"] = requirement.public_when.upper()
    operation["security"] = schemes
    operation["x-required-role"] = requirement.role.value
    operation["x-required-scope"] = requirement.scope.value
    operation["x-sessions-only"] = requirement.sessions_only
    for code in ("401", "403"):
        responses.setdefault(code, _error_response_doc(_AUTH_RESPONSES[code]))


def document_security(schema: dict[str, Any], routes: list[BaseRoute]) -> dict[str, Any]:
    """Add security schemes and each operation's access rule to an OpenAPI schema."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components.setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    for rule in route_rules(routes):
        path_item = schema.get("paths", {}).get(rule.path, {})
        for method in rule.methods:
            operation = path_item.get(method.lower())
            if operation is not None:
                _document_operation(operation, rule.requirement)
    return schema
