"""Two app processes sharing one PostgreSQL and the real Redis agree on security state.

Each "process" is a separate Platform with its own app object, engine and
Redis connection; they share only the database and Redis, as two workers of
one deployment do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.security.conftest import SecureApi, bearer, running_api, settings_for
from trademk.security.roles import Role, Scope

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@asynccontextmanager
async def two_processes(
    tmp_path: Path, postgres_url: str, redis_url: str, prefix: str, **overrides: Any
) -> AsyncIterator[tuple[SecureApi, SecureApi]]:
    async with AsyncExitStack() as stack:
        apis = []
        for name in ("a", "b"):
            settings = settings_for(
                tmp_path / name,
                database_url=postgres_url,
                redis_url=redis_url,
                security_redis_prefix=prefix,
                **overrides,
            )
            apis.append(await stack.enter_async_context(running_api(settings)))
        yield apis[0], apis[1]


async def test_a_key_revoked_in_one_process_is_refused_at_once_by_the_other(
    tmp_path: Path, postgres_url: str, redis_url: str, unique_name: str
) -> None:
    async with two_processes(tmp_path, postgres_url, redis_url, unique_name) as (a, b):
        owner = await a.user(Role.TRADER, email=f"{unique_name}@example.com")
        key = await a.api_key(owner, Scope.TRADE)
        key_id = (await a.platform.security.api_keys.list_for(owner.id))[0].id
        before = await b.client.get("/api/v1/users/me", headers=bearer(key))
        revoked = await a.client.delete(f"/api/v1/api-keys/{key_id}", headers=bearer(key))
        after_b = await b.client.get("/api/v1/users/me", headers=bearer(key))
        after_a = await a.client.get("/api/v1/users/me", headers=bearer(key))
    assert before.status_code == 200
    assert revoked.status_code == 200
    assert after_b.status_code == 401 and after_a.status_code == 401


async def test_logout_in_one_process_refuses_the_access_token_in_the_other(
    tmp_path: Path, postgres_url: str, redis_url: str, unique_name: str
) -> None:
    async with two_processes(tmp_path, postgres_url, redis_url, unique_name) as (a, b):
        user = await a.user(Role.VIEWER, email=f"{unique_name}@example.com")
        tokens = await a.login(user.email)
        headers = bearer(tokens["access_token"])
        before = await b.client.get("/api/v1/users/me", headers=headers)
        out = await a.client.post("/api/v1/auth/logout", json={}, headers=headers)
        after = await b.client.get("/api/v1/users/me", headers=headers)
        refresh_in_b = await b.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
    assert before.status_code == 200 and out.status_code == 204
    assert after.status_code == 401
    assert refresh_in_b.status_code == 200  # only this access token was logged out


async def test_rate_limit_is_shared_across_processes(
    tmp_path: Path, postgres_url: str, redis_url: str, unique_name: str
) -> None:
    async with two_processes(
        tmp_path, postgres_url, redis_url, unique_name, rate_limit_per_minute=4
    ) as (a, b):
        user = await a.user(Role.VIEWER, email=f"{unique_name}@example.com")
        headers = bearer(a.access_token(user))
        statuses = []
        for api in (a, b, a, b, a):
            statuses.append((await api.client.get("/api/v1/users/me", headers=headers)).status_code)
        limited = await b.client.get("/api/v1/users/me", headers=headers)
    assert statuses == [200, 200, 200, 200, 429]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_failed_logins_are_counted_across_processes(
    tmp_path: Path, postgres_url: str, redis_url: str, unique_name: str
) -> None:
    async with two_processes(
        tmp_path, postgres_url, redis_url, unique_name, login_max_failures=2
    ) as (a, b):
        user = await a.user(Role.VIEWER, email=f"{unique_name}@example.com")
        wrong = {"email": user.email, "password": "not-the-password"}
        first = await a.client.post("/api/v1/auth/login", json=wrong)
        second = await b.client.post("/api/v1/auth/login", json=wrong)
        third = await a.client.post("/api/v1/auth/login", json=wrong)
    assert (first.status_code, second.status_code, third.status_code) == (401, 401, 429)


async def test_rate_limit_answers_429_with_retry_after_in_memory_too(
    tmp_path: Path,
) -> None:
    async with running_api(settings_for(tmp_path, rate_limit_ip_per_minute=3)) as api:
        statuses = [(await api.client.get("/api/v1/users/me")).status_code for _ in range(4)]
        limited = await api.client.get("/api/v1/users/me")
    assert statuses == [401, 401, 401, 429]
    assert int(limited.headers["retry-after"]) >= 1
