"""Async engine and session factory for the application database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URLs.

    SQLite files get their directory created, WAL mode and foreign keys on.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_pragmas)
        return engine
    options.setdefault("pool_pre_ping", True)
    options.setdefault("connect_args", {"timeout": 5})
    return create_async_engine(url, **options)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on error."""
    async with sessions() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    """Round trip to the database; raises when it is unreachable."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
