from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.config import async_database_url
from trademk.storage import database, migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def app_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The app database URL on each backend: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    return async_database_url(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
async def migrated_engine(app_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = database.create_engine(app_db_url)
    await migrate.upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
