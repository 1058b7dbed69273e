"""The platform split into processes on the real Redis and PostgreSQL, without Docker.

`trademk api`, two `trademk worker --role execution` and one `trademk worker
--role ingest` run as separate processes. The ingest worker alone reads the
(simulated) feed and stores ticks; the others get prices from it over Redis.
Signals sent to the API execute exactly once, in the workers; a WebSocket
client on the API sees the fills the workers produced; the API's positions,
state, halt and resume are the workers'.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import orjson
import pytest
import websockets

from tests.e2e.test_security_cli import TRADEMK, free_port, trademk_env

SIGNALS = 40
QTY = Decimal("0.001")
ADMIN = {"email": "ops@example.com", "password": "split deployment admin 123"}
GENEROUS_LIMITS = {
    "max_orders_per_second": "100000",
    "max_orders_per_minute": "10000000",
    "max_open_orders": "100000",
    "max_open_orders_per_symbol": "100000",
    "max_daily_loss_usd": "1000000",
}


class Processes:
    """Subprocesses with their output in files (a full pipe must never block one)."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.running: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [TRADEMK, *args], env=self.env, cwd=self.tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
        self.running.append((name, process, log))
        return process

    def check_alive(self) -> None:
        for name, process, _ in self.running:
            assert process.poll() is None, f"{name} exited early:\n{self.output(name)}"

    def output(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop_all(self) -> dict[str, int | None]:
        for _, process, _ in reversed(self.running):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        codes = {}
        for name, process, log in self.running:
            try:
                codes[name] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = None
            log.close()
        return codes


@contextlib.contextmanager
def _deployment(
    tmp_path: Path,
    database: str,
    redis_url: str,
    workers: list[str],
    **settings: str,
) -> Iterator[tuple[str, Processes]]:
    """Migrate once, then start an ingest worker, the given workers and `trademk api`."""
    port = free_port()
    defaults = {
        "FEED": "sim",
        "SIM_TICKS_PER_SECOND": "20",
        "CRYPTO_SYMBOLS": "BTCUSDT,ETHUSDT",
        "STOCK_SYMBOLS": "AAPL",
        "DEFAULT_STRATEGIES": "false",
        "INGEST_FLUSH_INTERVAL": "0.05",
    }
    env = trademk_env(
        tmp_path,
        **{**defaults, **settings},
        DATABASE_URL=database,
        TICKSTORE_URL=database,
        REDIS_URL=redis_url,
        REDIS_NAMESPACE=f"t{uuid.uuid4().hex[:10]}",
        TRADEMK_ADMIN_EMAIL=ADMIN["email"],
        TRADEMK_ADMIN_PASSWORD=ADMIN["password"],
    )
    migrated = subprocess.run([TRADEMK, "migrate"], env=env, cwd=tmp_path, capture_output=True)
    assert migrated.returncode == 0, migrated.stderr
    asyncio.run(_generous_limits(database))
    processes = Processes(tmp_path, env)
    processes.start("ingest", "worker", "--role", "ingest")
    for n, role in enumerate(workers, start=1):
        processes.start(f"{role}-{n}", "worker", "--role", role)
    processes.start("api", "api", "--port", str(port))
    try:
        yield f"http://127.0.0.1:{port}", processes
    finally:
        codes = processes.stop_all()
    # Ctrl-C ends each process cleanly.
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture
def deployment(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str
) -> Iterator[tuple[str, Processes, str]]:
    with _deployment(tmp_path, fresh_postgres_url, redis_url, ["execution", "execution"]) as (
        url,
        processes,
    ):
        yield url, processes, fresh_postgres_url


async def _generous_limits(database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        for key, value in GENEROUS_LIMITS.items():
            await conn.execute(
                "UPDATE configs SET value = $1 WHERE key = $2 AND scope = 'risk'", f'"{value}"', key
            )
    finally:
        await conn.close()


async def _ready(
    http: httpx.AsyncClient, processes: Processes, execution_workers: int = 2
) -> dict[str, str]:
    """Wait for the API, a price relayed from the ingest worker, and the execution workers."""
    async with asyncio.timeout(90):
        while True:
            processes.check_alive()
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/api/health")).status_code == 200:
                    break
            await asyncio.sleep(0.2)
        login = await http.post("/api/v1/auth/login", json=ADMIN)
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        while (
            await http.get("/api/v1/market-data/latest/BTCUSDT", headers=auth)
        ).status_code != 200:
            await asyncio.sleep(0.2)
        while True:
            health = (await http.get("/api/health/detailed")).json()
            state = await http.get("/api/v1/trading/state", headers=auth)
            if state.status_code == 200 and health.get("status") == "healthy":
                break
            processes.check_alive()
            await asyncio.sleep(0.2)
        await _workers_report(http, execution_workers)
    return auth


async def _workers_report(http: httpx.AsyncClient, execution_workers: int) -> None:
    """The API follows the workers' heartbeats; wait until all are in its health report."""
    while True:
        health = (await http.get("/api/health/detailed")).json()
        if len(health["components"]["workers"]["execution"]) == execution_workers:
            return
        await asyncio.sleep(0.2)


async def _fills_on_websocket(
    url: str, auth: dict[str, str], expected: set[str], seen: dict[str, list[dict[str, Any]]]
) -> None:
    token = auth["Authorization"].removeprefix("Bearer ")
    async with websockets.connect(f"{url.replace('http', 'ws', 1)}/ws?token={token}") as ws:
        await ws.send(orjson.dumps({"action": "subscribe", "channels": ["fills", "orders"]}))
        seen["subscribed"] = []
        while not expected <= {m["data"]["client_order_id"] for m in seen.get("fill", [])}:
            message = orjson.loads(await ws.recv())
            seen.setdefault(message["type"], []).append(message)


async def _journaled(
    database: str, count: int, within: float = 15.0
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """The stored orders and each order's filled qty, once ``count`` orders are stored
    and none is still waiting to be sent (or ``within`` seconds passed)."""
    conn = await asyncpg.connect(database)
    try:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            orders = await conn.fetch("SELECT client_order_id, status FROM orders")
            settled = all(r["status"] not in {"initialized", "submitted"} for r in orders)
            if (len(orders) >= count and settled) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        fills = await conn.fetch(
            "SELECT client_order_id, sum(qty) AS qty FROM fills GROUP BY client_order_id"
        )
    finally:
        await conn.close()
    return orders, fills


async def test_signals_sent_to_the_api_execute_once_in_the_workers_and_fills_reach_its_websocket(
    deployment: tuple[str, Processes, str],
) -> None:
    url, processes, database = deployment
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        auth = await _ready(http, processes)
        ids = {f"split-{i:03d}" for i in range(SIGNALS)}
        seen: dict[str, list[dict[str, Any]]] = {}
        listener = asyncio.create_task(_fills_on_websocket(url, auth, ids, seen))
        async with asyncio.timeout(10):
            while "subscribed" not in seen:
                await asyncio.sleep(0.05)
        for i, cid in enumerate(sorted(ids)):
            side = "buy" if i % 4 != 3 else "sell"
            sent = await http.post(
                "/api/v1/trading/signal",
                json={"symbol": "BTCUSDT", "side": side, "qty": str(QTY), "client_order_id": cid},
                headers=auth,
            )
            assert sent.status_code == 202, sent.text
        async with asyncio.timeout(60):
            await listener

        # Fills reach the bus first; the workers' journals store them write-behind.
        orders, fills = await _journaled(database, SIGNALS)
        assert sorted(r["client_order_id"] for r in orders) == sorted(ids)
        assert {r["status"] for r in orders} == {"filled"}
        assert {r["client_order_id"]: r["qty"] for r in fills} == dict.fromkeys(ids, QTY)
        ws_fills = [m["data"]["client_order_id"] for m in seen["fill"]]
        assert sorted(set(ws_fills)) == sorted(ids)

        # The API's book is both workers' fills together: 30 buys and 10 sells.
        positions = (await http.get("/api/v1/trading/positions", headers=auth)).json()
        assert [(p["symbol"], Decimal(p["qty"])) for p in positions] == [("BTCUSDT", QTY * 20)]
        listed = (await http.get("/api/v1/trading/orders?limit=1000", headers=auth)).json()
        assert len(listed) == SIGNALS

        # The kill switch reaches every worker: a signal after it is denied, and resume lifts it.
        halted = await http.post("/api/v1/trading/halt", json={"reason": "e2e"}, headers=auth)
        assert halted.status_code == 200, halted.text
        assert halted.json()["state"] == "halted"
        denied = await http.post(
            "/api/v1/trading/signal",
            json={"symbol": "BTCUSDT", "side": "buy", "qty": "0.001", "client_order_id": "after"},
            headers=auth,
        )
        assert denied.status_code == 202
        after = await _order_reaches(http, auth, "after", {"denied", "filled"})
        assert after["status"] == "denied" and "e2e" in (after["reason"] or after["error_message"])
        resumed = await http.post("/api/v1/trading/resume", headers=auth)
        assert resumed.status_code == 200 and resumed.json()["state"] == "active"

        # A cancel reaches the worker that holds the order (a buy 5 % under the market rests).
        latest = (await http.get("/api/v1/market-data/latest/BTCUSDT", headers=auth)).json()
        limit_price = (Decimal(str(latest["price"])) * Decimal("0.95")).quantize(Decimal("0.01"))
        resting = await http.post(
            "/api/v1/trading/signal",
            json={
                "symbol": "BTCUSDT",
                "side": "buy",
                "qty": "0.001",
                "type": "limit",
                "limit_price": str(limit_price),
                "client_order_id": "resting",
            },
            headers=auth,
        )
        assert resting.status_code == 202
        assert (await _order_reaches(http, auth, "resting", {"accepted"}))["status"] == "accepted"
        canceled = await http.delete("/api/v1/trading/orders/resting", headers=auth)
        assert canceled.status_code == 202, canceled.text
        await _order_reaches(http, auth, "resting", {"canceled"})
        again = await http.delete("/api/v1/trading/orders/resting", headers=auth)
        assert again.status_code == 409, again.text

        # A limit change reaches every worker.
        changed = await http.put(
            "/api/v1/risk/limits", json={"max_order_qty_crypto": "0.0005"}, headers=auth
        )
        assert changed.status_code == 200, changed.text
        too_big = await http.post(
            "/api/v1/trading/signal",
            json={"symbol": "BTCUSDT", "side": "buy", "qty": "0.001", "client_order_id": "big"},
            headers=auth,
        )
        assert too_big.status_code == 202
        assert (await _order_reaches(http, auth, "big", {"denied"}))["status"] == "denied"
        processes.check_alive()


async def _order_reaches(
    http: httpx.AsyncClient, auth: dict[str, str], cid: str, statuses: set[str]
) -> dict[str, Any]:
    order: dict[str, Any] = {}
    async with asyncio.timeout(20):
        while order.get("status") not in statuses:
            response = await http.get(f"/api/v1/trading/orders/{cid}", headers=auth)
            order = response.json() if response.status_code == 200 else {}
            await asyncio.sleep(0.1)
    return order


def test_the_api_process_refuses_embedded_storage(tmp_path: Path) -> None:
    result = subprocess.run(
        [TRADEMK, "api"],
        env=trademk_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "`trademk api` runs next to other processes" in result.stderr
    assert "REDIS_URL is not set" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def with_strategies_worker(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str
) -> Iterator[tuple[str, Processes]]:
    """Ingest, one execution worker, the strategies worker (default strategies on) and the API."""
    with _deployment(
        tmp_path,
        fresh_postgres_url,
        redis_url,
        ["execution", "strategies"],
        DEFAULT_STRATEGIES="true",
        SIM_TICKS_PER_SECOND="50",
    ) as running:
        yield running


async def test_a_strategies_worker_trades_on_its_own_and_the_api_steers_it(
    with_strategies_worker: tuple[str, Processes],
) -> None:
    url, processes = with_strategies_worker
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        auth = await _ready(http, processes, execution_workers=1)
        # The strategies worker seeded the default paper strategies and runs them.
        async with asyncio.timeout(60):
            while True:
                listed = (await http.get("/api/v1/strategies", headers=auth)).json()
                if listed and all(s["state"] == "running" for s in listed):
                    break
                processes.check_alive()
                await asyncio.sleep(0.5)
        ids = {s["id"] for s in listed}
        # Its orders go through the execution worker and carry the strategy's id.
        async with asyncio.timeout(120):
            while True:
                orders = (await http.get("/api/v1/trading/orders", headers=auth)).json()
                placed = [o for o in orders if o["strategy_id"] in ids]
                if any(o["status"] == "filled" for o in placed):
                    break
                processes.check_alive()
                await asyncio.sleep(1)
        trader = next(o["strategy_id"] for o in placed if o["status"] == "filled")
        performance = await http.get(f"/api/v1/strategies/{trader}/performance", headers=auth)
        assert performance.status_code == 200, performance.text
        report = performance.json()
        assert report["orders"] >= 1 and report["fills"] >= 1, report

        # The API stops it in the worker; a new definition starts there at once.
        stopped = await http.post(f"/api/v1/strategies/{trader}/stop", headers=auth)
        assert stopped.status_code == 200, stopped.text
        assert (stopped.json()["state"], stopped.json()["enabled"]) == ("stopped", False)
        created = await http.post(
            "/api/v1/strategies",
            json={
                "name": "momentum-eth-split",
                "strategy_class": "momentum",
                "symbols": ["ETHUSDT"],
                "interval": "5s",
                "capital_allocation": "300",
                "params": {"lookback": 2},
                "enabled": True,
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text
        new_id = created.json()["id"]
        async with asyncio.timeout(20):
            while True:
                state = (await http.get(f"/api/v1/strategies/{new_id}", headers=auth)).json()
                if state["state"] == "running":
                    break
                await asyncio.sleep(0.2)
        health = (await http.get("/api/health/detailed")).json()
        assert len(health["components"]["workers"]["strategies"]) == 1
        processes.check_alive()
