"""Crash between submission and fill: the restarted platform settles it, submits nothing twice.

A real `trademk run` process trades on the Alpaca fake (alpaca-py over real
sockets). It is killed with SIGKILL while a limit order rests at the venue; the
order fills while the platform is down; the restarted process reconciles.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from tests.fakes.alpaca_trading import AlpacaTradingFake

TRADEMK = str(Path(sys.executable).parent / "trademk")
ADMIN = "ops@example.com"
PASSWORD = "crash-test-password-1"


def _start(tmp_path: Path, fake: AlpacaTradingFake, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "BROKER": "alpaca",
            "ALPACA_API_KEY": fake.api_key,
            "ALPACA_API_SECRET": fake.secret_key,
            "ALPACA_PAPER_BASE_URL": fake.base_url,
            "TRADEMK_ADMIN_EMAIL": ADMIN,
            "TRADEMK_ADMIN_PASSWORD": PASSWORD,
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "PASSWORD_HASH_TIME_COST": "1",
        }
    )
    return subprocess.Popen(
        [TRADEMK, "run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _login(base: str, process: subprocess.Popen[bytes]) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(300):
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode())  # type: ignore[union-attr]
            try:
                response = await client.post(
                    "/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD}
                )
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            if response.status_code == 503:
                await asyncio.sleep(0.1)
                continue
            assert response.status_code == 200, response.text
            return {"Authorization": f"Bearer {response.json()['access_token']}"}
    raise AssertionError("the platform did not come up")


async def _order(base: str, headers: dict[str, str], cid: str, status: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        for _ in range(200):
            response = await client.get(f"/api/v1/trading/orders/{cid}")
            if response.status_code == 200 and response.json()["status"] == status:
                return response.json()  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)
        raise AssertionError(f"order {cid} never reached {status}: {response.text}")


async def test_killed_between_submission_and_fill(tmp_path: Path, closed_port: int) -> None:
    base = f"http://127.0.0.1:{closed_port}"
    async with AlpacaTradingFake() as fake:
        await fake.set_market("BTC/USD", Decimal("64990"), Decimal("65010"))
        first = _start(tmp_path, fake, closed_port)
        try:
            headers = await _login(base, first)
            async with httpx.AsyncClient(base_url=base, headers=headers) as client:
                # The simulated feed prices BTCUSDT near 65,000: a limit 2% below rests.
                latest = (await client.get("/api/v1/market-data/latest/BTCUSDT")).json()
                limit = (Decimal(str(latest["price"])) * Decimal("0.98")).quantize(Decimal(1))
                response = await client.post(
                    "/api/v1/trading/signal",
                    json={
                        "symbol": "BTCUSDT",
                        "side": "buy",
                        "qty": "0.01",
                        "type": "limit",
                        "limit_price": str(limit),
                        "client_order_id": "crash-1",
                    },
                )
                assert response.status_code == 202, response.text
            await _order(base, headers, "crash-1", "accepted")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)

        await fake.fill("crash-1", Decimal("0.01"), limit)
        second = _start(tmp_path, fake, closed_port)
        try:
            headers = await _login(base, second)
            order = await _order(base, headers, "crash-1", "filled")
            assert Decimal(order["filled_qty"]) == Decimal("0.01")
            assert Decimal(order["filled_avg_price"]) == limit
            async with httpx.AsyncClient(base_url=base, headers=headers) as client:
                positions = (await client.get("/api/v1/trading/positions")).json()
                state = (await client.get("/api/v1/trading/state")).json()
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(timeout=30)
        assert [(p["symbol"], Decimal(p["qty"])) for p in positions] == [
            ("BTCUSDT", Decimal("0.01"))
        ]
        assert state["state"] == "active"
        assert len(fake.requests_to("POST", "/v2/orders")) == 1
