"""Every route x every kind of caller gets the answer its declared rule demands.

The routes come from the app itself (``app.routes``, flattened with prefixes),
so a route added later is covered without editing this file. Each route's rule
is read from the dependency it declares; the expected outcome for each caller
is computed here independently of the product code:

- anonymous callers get 401 on every route that is not public;
- a user needs a role at least the declared one;
- an API key needs that too, plus a scope at least the declared one, and is
  refused on session-only routes;
- callers who pass get neither 401 nor 403 (nor a server error).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, FastAPI, WebSocket, status

from tests.integration.security.conftest import SecureApi, bearer, running_api, settings_for
from trademk.api.app import create_app
from trademk.api.security import MarketDataDep, RouteRule, TraderDep, ViewerDep, route_rules
from trademk.config import Settings
from trademk.security.roles import Requirement, Role, Scope
from trademk.security.users import UserInfo

IN_MATRIX = pytest.mark.asyncio(loop_scope="module")

SIGNAL_PATH = "/api/v1/trading/signal"
# Roles and scopes share one ladder: viewer/read < trader/trade < admin.
LEVEL = {"viewer": 1, "read": 1, "trader": 2, "trade": 2, "admin": 3}


@dataclass(frozen=True)
class Caller:
    """A kind of caller: its role, and for API keys the key's scope."""

    name: str
    role: str | None = None
    key_scope: str | None = None


CALLERS = (
    Caller("anonymous"),
    Caller("viewer", role="viewer"),
    Caller("trader", role="trader"),
    Caller("admin", role="admin"),
    Caller("key:read", role="admin", key_scope="read"),
    Caller("key:trade", role="admin", key_scope="trade"),
    Caller("key:admin", role="admin", key_scope="admin"),
)


def expected(caller: Caller, rule: Requirement | None) -> str:
    """'pass', 401 or 403, decided from the rule without the product's own logic."""
    if rule is None:
        return "pass"
    if caller.role is None:
        return "401"
    if LEVEL[caller.role] < LEVEL[rule.role.value]:
        return "403"
    if caller.key_scope is not None and (
        rule.sessions_only or LEVEL[caller.key_scope] < LEVEL[rule.scope.value]
    ):
        return "403"
    return "pass"


def outcome(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        return str(response.status_code)
    assert response.status_code != 500, f"server error: {response.text}"
    return "pass"


def _app_rules() -> list[RouteRule]:
    return route_rules(create_app(Settings(_env_file=None)).routes)


HTTP_CASES = [
    pytest.param(rule, method, id=f"{method} {rule.path}")
    for rule in _app_rules()
    if not rule.websocket
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
]
PROTECTED_CASES = [
    pytest.param(rule, method, id=f"{method} {rule.path}")
    for rule in _app_rules()
    if not rule.websocket and rule.requirement is not None
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
]
WS_RULES = [
    pytest.param(rule, id=rule.path)
    for rule in _app_rules()
    if rule.websocket and rule.requirement is not None
]


def concrete_path(path: str) -> str:
    """The template with ids where ids go and a symbol elsewhere."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return str(uuid.uuid4()) if name.endswith("id") else "BTCUSDT"

    return re.sub(r"\{([^}]+)\}", value, path)


@dataclass
class Matrix:
    api: SecureApi
    users: dict[str, UserInfo]
    keys: dict[str, str]

    def headers(self, caller: Caller) -> dict[str, str]:
        if caller.role is None:
            return {}
        if caller.key_scope is not None:
            return bearer(self.keys[caller.key_scope])
        return bearer(self.api.access_token(self.users[caller.role]))


def _test_signal_router() -> APIRouter:
    """Stands in for the trading route until it exists (test-only, never in the product)."""
    router = APIRouter()

    @router.post(SIGNAL_PATH, status_code=status.HTTP_202_ACCEPTED)
    async def signal(body: dict[str, Any], principal: TraderDep) -> dict[str, str]:
        return {"accepted_for": principal.email}

    return router


def _has_signal_route(app: FastAPI) -> bool:
    return any(r.path == SIGNAL_PATH and "POST" in r.methods for r in route_rules(app.routes))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Matrix]:
    data_dir: Path = tmp_path_factory.mktemp("matrix")
    settings = settings_for(
        data_dir, rate_limit_per_minute=100_000, rate_limit_ip_per_minute=100_000
    )
    app = create_app(settings)
    if not _has_signal_route(app):
        app.include_router(_test_signal_router())
    async with running_api(settings, app=app) as api:
        users = {role.value: await api.user(role) for role in Role}
        keys = {
            scope.value: await api.api_key(users["admin"], scope)
            for scope in (Scope.READ, Scope.TRADE, Scope.ADMIN)
        }
        yield Matrix(api, users, keys)


@IN_MATRIX
@pytest.mark.parametrize(("rule", "method"), HTTP_CASES)
async def test_route_answers_each_caller_as_its_rule_demands(
    matrix: Matrix, rule: RouteRule, method: str
) -> None:
    path = concrete_path(rule.path)
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    got, want = {}, {}
    for caller in CALLERS:
        response = await matrix.api.client.request(
            method, path, json=body, headers=matrix.headers(caller)
        )
        got[caller.name] = outcome(response)
        want[caller.name] = expected(caller, rule.requirement)
    assert got == want


@IN_MATRIX
@pytest.mark.parametrize(("rule", "method"), PROTECTED_CASES)
async def test_every_non_public_route_refuses_anonymous_callers_with_401(
    matrix: Matrix, rule: RouteRule, method: str
) -> None:
    response = await matrix.api.client.request(method, concrete_path(rule.path))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_every_api_route_declares_its_access_rule() -> None:
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in _app_rules() if not r.declared]
    assert undeclared == [], "declare ViewerDep/TraderDep/AdminDep/PublicDep on these routes"


def test_only_the_intended_routes_are_public() -> None:
    public = {r.path for r in _app_rules() if r.requirement is None}
    assert public <= {
        "/",
        "/api/health",
        "/api/health/detailed",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/metrics",  # Prometheus scrapes without credentials, like the health probes
        "/app",  # the dashboard's page and static assets; it logs in to call the API
        "/app/{path}",
    }


@IN_MATRIX
async def test_signal_acceptance_anonymous_401_viewer_403_trader_202(matrix: Matrix) -> None:
    """Runs against the real trading route when the app has one, else the stand-in."""
    body = _signal_example(matrix.api.app)
    statuses = {}
    for caller in (CALLERS[0], CALLERS[1], CALLERS[2], CALLERS[4], CALLERS[5]):
        response = await matrix.api.client.post(
            SIGNAL_PATH, json=body, headers=matrix.headers(caller)
        )
        statuses[caller.name] = response.status_code
    assert statuses == {
        "anonymous": 401,
        "viewer": 403,
        "trader": 202,
        "key:read": 403,
        "key:trade": 202,
    }


def _signal_example(app: FastAPI) -> dict[str, Any]:
    """The documented example request of the signal route (or a plausible signal)."""
    operation = app.openapi()["paths"].get(SIGNAL_PATH, {}).get("post", {})
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    if "$ref" in schema:
        schema = app.openapi()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    examples = content.get("example") or (schema.get("examples") or [None])[0]
    return examples or {"symbol": "BTCUSDT", "side": "buy", "qty": "0.001", "type": "market"}


def _with_market_data_route(app: FastAPI) -> FastAPI:
    """Adds a stand-in market-data route if the app has none yet (test-only)."""
    if any(r.requirement and r.requirement.public_when for r in route_rules(app.routes)):
        return app
    router = APIRouter()

    @router.get("/api/v1/market-data/probe")
    async def probe(principal: MarketDataDep) -> dict[str, bool]:
        return {"anonymous": principal is None}

    app.include_router(router)
    return app


@pytest.mark.parametrize("public_market_data", [False, True])
async def test_market_data_is_open_to_anonymous_only_when_configured(
    tmp_path: Path, public_market_data: bool
) -> None:
    settings = settings_for(tmp_path, public_market_data=public_market_data)
    app = _with_market_data_route(create_app(settings))
    rules = [r for r in route_rules(app.routes) if r.requirement and r.requirement.public_when]
    async with running_api(settings, app=app) as api:
        statuses = {
            rule.path: (await api.client.get(concrete_path(rule.path))).status_code
            for rule in rules
            if "GET" in rule.methods
        }
    assert statuses
    if public_market_data:
        assert 401 not in statuses.values()
    else:
        assert set(statuses.values()) == {401}


async def test_a_route_declaring_nothing_is_admin_only(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    app = create_app(settings)
    forgotten = APIRouter()

    @forgotten.get("/api/v1/forgotten")
    async def undeclared() -> dict[str, bool]:
        return {"reached": True}

    app.include_router(forgotten)
    async with running_api(settings, app=app) as api:
        viewer = await api.user(Role.VIEWER)
        admin = await api.user(Role.ADMIN)
        anonymous = await api.client.get("/api/v1/forgotten")
        as_viewer = await api.client.get(
            "/api/v1/forgotten", headers=bearer(api.access_token(viewer))
        )
        as_admin = await api.client.get(
            "/api/v1/forgotten", headers=bearer(api.access_token(admin))
        )
    rule = next(r for r in route_rules(app.routes) if r.path == "/api/v1/forgotten")
    assert not rule.declared and rule.requirement == Requirement.of(Role.ADMIN)
    assert (anonymous.status_code, as_viewer.status_code, as_admin.status_code) == (401, 403, 200)


@IN_MATRIX
@pytest.mark.parametrize("rule", WS_RULES)
async def test_websocket_routes_refuse_anonymous_handshakes(
    matrix: Matrix, rule: RouteRule
) -> None:
    first = await _ws_first_message(matrix.api.app, concrete_path(rule.path))
    assert first["type"] == "websocket.close"
    assert first["code"] == status.WS_1008_POLICY_VIOLATION


async def _ws_first_message(app: FastAPI, path: str, query: str = "") -> dict[str, Any]:
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
        "scheme": "ws",
        "subprotocols": [],
        "state": {},
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent[0]


async def test_websocket_dependency_accepts_a_token_in_the_query_and_refuses_none(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    app = create_app(settings)
    router = APIRouter()

    @router.websocket("/api/v1/ws/probe")
    async def probe(websocket: WebSocket, principal: ViewerDep) -> None:
        await websocket.accept()
        await websocket.send_text(principal.email)
        await websocket.close()

    app.include_router(router)
    async with running_api(settings, app=app) as api:
        viewer = await api.user(Role.VIEWER)
        refused = await _ws_first_message(app, "/api/v1/ws/probe")
        accepted = await _ws_first_message(
            app, "/api/v1/ws/probe", query=f"access_token={api.access_token(viewer)}"
        )
    assert refused["type"] == "websocket.close"
    assert refused["code"] == status.WS_1008_POLICY_VIOLATION
    assert accepted["type"] == "websocket.accept"


async def test_an_undeclared_prefixed_root_route_is_not_mistaken_for_the_public_root(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    app = create_app(settings)
    nested = APIRouter()

    @nested.get("/")
    async def nested_root() -> dict[str, bool]:
        return {"reached": True}

    app.include_router(nested, prefix="/api/v1/nested")
    async with running_api(settings, app=app) as api:
        anonymous = await api.client.get("/api/v1/nested/")
    assert anonymous.status_code == 401
