"""Shared fixtures: real PostgreSQL and Redis (DESIGN.md §5).

A missing service fails the test with a message saying how to start it; it is
never skipped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

pytest_plugins = ["tests.support.trading_api"]

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

_PG_HELP = (
    "PostgreSQL is not reachable at {url} ({err}). Start it with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
    "or point TEST_POSTGRES_URL at a server."
)
_REDIS_HELP = (
    "Redis is not reachable at {url} ({err}). Start it with `redis-server --daemonize yes "
    '--bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no` or point TEST_REDIS_URL '
    "at a server."
)


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


async def _admin_execute(sql: str) -> None:
    conn = await asyncpg.connect(TEST_POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the configured test server; fails clearly when it is down."""
    try:
        asyncio.run(_admin_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        pytest.fail(_PG_HELP.format(url=TEST_POSTGRES_URL, err=err), pytrace=False)
    return TEST_POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server for this test worker (``postgresql://``)."""
    name = f"trademk_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(postgres_server_url, name)
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    async def ping() -> None:
        client = aioredis.from_url(TEST_REDIS_URL, socket_connect_timeout=3)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except (OSError, aioredis.RedisError) as err:
        pytest.fail(_REDIS_HELP.format(url=TEST_REDIS_URL, err=err), pytrace=False)
    return TEST_REDIS_URL


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def unique_name() -> str:
    """A name no other test (or test worker) uses: for streams, tables, keys."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def closed_port() -> int:
    """A local TCP port with nothing listening on it (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fresh_postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (``postgresql://``), dropped afterwards."""
    name = f"trademk_f_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(postgres_server_url, name)
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
