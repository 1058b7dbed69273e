"""A platform without a live feed: tests move the market by hand."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.security.conftest import PASSWORD, bearer, settings_for
from trademk.api.app import create_app
from trademk.domain.market import Tick, TickKind
from trademk.engine.clock import Clock
from trademk.runtime import Platform
from trademk.security.roles import Role
from trademk.security.tokens import TokenType


@dataclass
class TradingApi:
    platform: Platform
    client: httpx.AsyncClient
    headers: dict[str, str]

    def quote(self, symbol: str, bid: float, ask: float, size: float = 1_000.0) -> None:
        """Put a top-of-book quote into the latest-price cache (the paper venue reacts)."""
        now = self.platform.clock.now_ns()
        self.platform.market.prices.update(
            Tick(
                symbol=symbol,
                exchange="TEST",
                kind=TickKind.QUOTE,
                ts=now,
                price=(bid + ask) / 2,
                bid=bid,
                bid_size=size,
                ask=ask,
                ask_size=size,
                received=now,
            )
        )

    async def signal(self, **body: Any) -> httpx.Response:
        return await self.client.post("/api/v1/trading/signal", json=body, headers=self.headers)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)

    async def order_eventually(self, cid: str, status: str) -> dict[str, Any]:
        """The order once it reaches ``status`` (venue events are applied asynchronously)."""
        order: dict[str, Any] = {}
        try:
            async with asyncio.timeout(5):
                while order.get("status") != status:
                    await self.settled()
                    order = (await self.get(f"/api/v1/trading/orders/{cid}")).json()
                    await asyncio.sleep(0 if order.get("status") == status else 0.01)
        except TimeoutError:
            raise AssertionError(
                f"order {cid} is {order.get('status')}, expected {status}"
            ) from None
        return order

    async def settled(self) -> None:
        """Wait until queued signals are executed and every change is durable."""
        trading = self.platform.trading
        assert trading is not None
        await trading.signals.drain()  # type: ignore[attr-defined]
        await trading.journal.flush()


TradingFactory = Callable[..., AbstractAsyncContextManager[TradingApi]]


@pytest.fixture
def trading_api(tmp_path: Path) -> TradingFactory:
    @asynccontextmanager
    async def make(clock: Clock | None = None, **overrides: Any) -> AsyncIterator[TradingApi]:
        settings = settings_for(tmp_path, **overrides)
        platform = Platform(settings, clock=clock, run_feed=False)
        await platform.start()
        user = await platform.security.users.create(
            f"admin-{uuid.uuid4().hex[:8]}@example.com", PASSWORD, Role.ADMIN
        )
        token = platform.security.tokens.issue(user.id, TokenType.ACCESS).token
        transport = httpx.ASGITransport(app=create_app(platform=platform))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield TradingApi(platform, client, bearer(token))
        finally:
            await platform.stop()

    return make
