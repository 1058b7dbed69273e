"""asyncpg helpers shared by the backends that speak the PostgreSQL wire protocol."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

import asyncpg

from trademk.storage.ticks.errors import TickStoreNotStartedError, TickStoreUnavailableError

CONNECTIVITY_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)
"""Errors that mean the server is unreachable or went away, not that the query is wrong."""


@contextlib.asynccontextmanager
async def pooled_connection(
    pool: asyncpg.Pool | None, *, acquire_timeout: float, server: str
) -> AsyncIterator[asyncpg.Connection]:
    """A connection from ``pool``; connectivity failures become TickStoreUnavailableError.

    On such a failure every pooled connection is expired, because idle connections to
    a restarted server are dead too; the next call reconnects.
    """
    if pool is None:
        raise TickStoreNotStartedError(f"{server} tick store is not started: call start() first")
    try:
        async with pool.acquire(timeout=acquire_timeout) as conn:
            yield conn
    except CONNECTIVITY_ERRORS as err:
        await pool.expire_connections()
        raise TickStoreUnavailableError(f"{server} unreachable: {err}") from err
