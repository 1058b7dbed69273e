"""HTTP hardening on the real app: headers, body limit, CORS, OpenAPI security."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.integration.security.conftest import ApiFactory, bearer
from trademk.security.roles import Role


async def test_responses_carry_security_headers(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        health = await api.client.get("/api/health")
        refused = await api.client.get("/api/v1/users/me")
        docs = await api.client.get("/docs")
    for response in (health, refused):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers
    assert docs.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in docs.headers  # the docs page loads its scripts


async def test_production_sends_strict_transport_security(secure_api: ApiFactory) -> None:
    async with secure_api(environment="production", secret_key="k" * 40) as api:
        response = await api.client.get("/api/health")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_oversized_bodies_are_refused_with_413(secure_api: ApiFactory) -> None:
    async with secure_api(max_body_bytes=2048) as api:
        declared = await api.client.post(
            "/api/v1/auth/login", content=b"x" * 4096, headers={"content-type": "application/json"}
        )

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b" " * 512

        streamed = await api.client.post(
            "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
        )
        small = await api.client.post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": "nope-nope-nope"}
        )
    assert declared.status_code == 413 and "2048" in declared.json()["detail"]
    assert streamed.status_code == 413
    assert small.status_code == 401


async def test_cors_allows_configured_origins_only(secure_api: ApiFactory) -> None:
    async with secure_api(cors_origins=["https://dash.example.com"]) as api:
        allowed = await api.client.options(
            "/api/v1/users/me",
            headers={
                "Origin": "https://dash.example.com",
                "Access-Control-Request-Method": "GET",
            },
        )
        other = await api.client.options(
            "/api/v1/users/me",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example.com"
    assert "access-control-allow-origin" not in other.headers


async def test_wildcard_cors_never_allows_credentials(secure_api: ApiFactory) -> None:
    async with secure_api(cors_origins=["*"], cors_allow_credentials=True) as api:
        response = await api.client.get(
            "/api/health", headers={"Origin": "https://anywhere.example", "Cookie": "a=b"}
        )
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_openapi_documents_each_operations_access_rule(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        schema = (await api.client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    audit = schema["paths"]["/api/v1/audit"]["get"]
    assert audit["x-required-role"] == "admin" and audit["x-required-scope"] == "admin"
    assert {"401", "403", "429"} <= set(audit["responses"])
    create_key = schema["paths"]["/api/v1/api-keys"]["post"]
    assert create_key["security"] == [{"bearer": []}] and create_key["x-sessions-only"]
    login = schema["paths"]["/api/v1/auth/login"]["post"]
    assert login["security"] == [] and login["x-required-role"] == "public"


async def test_audit_api_is_admin_only_and_filters(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        viewer = await api.user(Role.VIEWER)
        await api.login(viewer.email)
        headers = bearer(api.access_token(admin))
        logins = await api.client.get("/api/v1/audit", params={"action": "login"}, headers=headers)
        mine = await api.client.get(
            "/api/v1/audit", params={"user_id": str(viewer.id)}, headers=headers
        )
        as_viewer = await api.client.get("/api/v1/audit", headers=bearer(api.access_token(viewer)))
        bad_range = await api.client.get(
            "/api/v1/audit",
            params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            headers=headers,
        )
        naive = await api.client.get(
            "/api/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=headers
        )
    assert logins.status_code == 200
    assert [e["actor_email"] for e in logins.json()] == [viewer.email]
    assert logins.json()[0]["request_id"]
    assert [e["action"] for e in mine.json()] == ["login"]
    assert as_viewer.status_code == 403
    assert bad_range.status_code == 422
    assert naive.status_code == 422
