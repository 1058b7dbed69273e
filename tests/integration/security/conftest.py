"""A running platform with its API, plus helpers to make users, sessions and keys."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from trademk.api.app import create_app
from trademk.config import Settings
from trademk.engine.clock import Clock
from trademk.runtime import Platform
from trademk.security.roles import Role, Scope
from trademk.security.tokens import TokenType
from trademk.security.users import UserInfo
from trademk.storage import database, migrate

PASSWORD = "correct horse battery staple"
# Cheap argon2 parameters keep the tests fast; production defaults are much higher.
FAST_HASHING = {"password_hash_memory_kib": 1024, "password_hash_time_cost": 1}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class SecureApi:
    """One platform, its app and an HTTP client talking to it in-process."""

    platform: Platform
    app: FastAPI
    client: httpx.AsyncClient

    async def user(self, role: Role, email: str | None = None) -> UserInfo:
        address = email or f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
        return await self.platform.security.users.create(address, PASSWORD, role)

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def access_token(self, user: UserInfo) -> str:
        """A fresh access token, as a login would hand out."""
        return self.platform.security.tokens.issue(user.id, TokenType.ACCESS).token

    async def api_key(self, user: UserInfo, *scopes: Scope, days: int | None = None) -> str:
        created = await self.platform.security.api_keys.create(
            user.id, user.role, "test key", frozenset(scopes), days
        )
        return created.key


ApiFactory = Callable[..., AbstractAsyncContextManager[SecureApi]]


_template: dict[str, Path] = {}


@pytest.fixture(scope="session", autouse=True)
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite app database migrated once per test process, copied for each test.

    Migrating a fresh database takes most of a platform's start-up; copying a
    migrated one keeps these tests fast. Platform.start still runs the
    (then empty) upgrade and the seed on the copy.
    """
    path = tmp_path_factory.mktemp("template") / "trademk.db"

    async def migrate_template() -> None:
        engine = database.create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate_template())
    _template["db"] = path
    return path


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """Test settings: fast hashing, and a pre-migrated SQLite database under ``data_dir``."""
    values: dict[str, Any] = {"data_dir": data_dir, **FAST_HASHING}
    values.update(overrides)
    target = Path(data_dir) / "trademk.db"
    if "database_url" not in overrides and "db" in _template and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template["db"], target)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_api(
    settings: Settings, clock: Clock | None = None, app: FastAPI | None = None
) -> AsyncIterator[SecureApi]:
    platform = Platform(settings, clock=clock)
    await platform.start()
    application = app or create_app(platform=platform)
    application.state.platform = platform
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield SecureApi(platform=platform, app=application, client=client)
    finally:
        await platform.stop()


@pytest.fixture
def secure_api(tmp_path: Path) -> ApiFactory:
    """Start a platform (SQLite under tmp_path unless overridden) and hand out its API."""

    def make(
        clock: Clock | None = None, **overrides: Any
    ) -> AbstractAsyncContextManager[SecureApi]:
        return running_api(settings_for(tmp_path, **overrides), clock=clock)

    return make
