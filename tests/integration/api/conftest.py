from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from trademk.api.app import create_app
from trademk.config import Settings
from trademk.runtime import Platform

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def api_client(tmp_path: Path) -> ClientFactory:
    """Start a platform on the given settings and hand out an HTTP client for its API."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(_env_file=None, data_dir=tmp_path, **overrides)  # type: ignore[call-arg]
        platform = Platform(settings)
        await platform.start()
        transport = httpx.ASGITransport(app=create_app(platform=platform))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client
        finally:
            await platform.stop()

    return make
