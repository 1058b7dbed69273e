"""The web dashboard in headless Chromium against the whole platform on a real port.

The platform runs with the simulated market at a high tick rate and the paper
venue. The test logs in through the UI and checks, panel by panel, what an
operator relies on: prices move, a paper order fills and shows up in orders and
positions, a strategy stops, the kill switch halts and resumes trading, and an
alert fires into the feed. Every step leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.integration.api.live_server import listening_socket
from tests.integration.security.conftest import PASSWORD, bearer, settings_for
from trademk.api.app import create_app
from trademk.api.routes.dashboard import DIST_DIR
from trademk.runtime import Platform
from trademk.security.roles import Role
from trademk.security.tokens import TokenType

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
# Browser-side waits: generous for a loaded machine, far below the test timeout.
UI_TIMEOUT_MS = 15_000
ORDER_QTY = "0.01"

pytestmark = pytest.mark.timeout(90)


@dataclass
class RunningPlatform:
    platform: Platform
    base_url: str
    admin_email: str
    admin_token: str


@asynccontextmanager
async def served_platform(data_dir: Path) -> AsyncIterator[RunningPlatform]:
    """The platform with the sim feed and paper venue, served by uvicorn on 127.0.0.1."""
    settings = settings_for(
        data_dir,
        feed="sim",
        sim_ticks_per_second=400,
        crypto_symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"],
        stock_symbols=["AAPL"],
        default_strategies=False,
    )
    platform = Platform(settings)
    await platform.start()
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    user = await platform.security.users.create(email, PASSWORD, Role.ADMIN)
    token = platform.security.tokens.issue(user.id, TokenType.ACCESS).token
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(platform=platform),
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
        )
    )
    listener = listening_socket(None)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        yield RunningPlatform(platform, base_url, email, token)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, 10)
        await platform.stop()
        listener.close()


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium`",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def create_running_strategy(running: RunningPlatform, name: str) -> None:
    """A paper strategy on ETHUSDT, started at once (created over the REST API)."""
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.post(
            "/api/v1/strategies",
            headers=bearer(running.admin_token),
            json={
                "name": name,
                "strategy_class": "sma_cross",
                "params": {"fast": 3, "slow": 8},
                "symbols": ["ETHUSDT"],
                "interval": "5s",
                "capital_allocation": "2000",
                "enabled": True,
                "mode": "paper",
            },
        )
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "running"


async def snap(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def region(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=name)


async def last_price(page: Page, symbol: str) -> float:
    watchlist = page.get_by_role("table", name="Watchlist")
    cell = watchlist.get_by_role("row", name=re.compile(f"^{symbol} ")).get_by_role("cell").first
    await expect(cell).to_have_text(re.compile(r"\d"))
    return float((await cell.inner_text()).replace(",", ""))


async def log_in(page: Page, running: RunningPlatform) -> None:
    await page.goto(f"{running.base_url}/app")
    await expect(page.get_by_role("heading", name="Trademk")).to_be_visible()
    await snap(page, "01-login")
    await page.get_by_label("Email").fill(running.admin_email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("status")).to_have_text("Login failed: invalid email or password")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("status", name="Live connection")).to_have_text("Live")


async def see_prices_move(page: Page) -> None:
    first = await last_price(page, "BTCUSDT")
    moved = first
    async with asyncio.timeout(UI_TIMEOUT_MS / 1000):
        while moved == first:
            await asyncio.sleep(0.1)
            moved = await last_price(page, "BTCUSDT")
    assert moved != first
    chart = page.get_by_role("img", name="Candle chart of BTCUSDT, 1-minute bars")
    await expect(chart.locator("canvas").first).to_be_visible()
    await snap(page, "02-prices-move")


async def send_paper_order(page: Page) -> None:
    ticket = page.get_by_role("form", name="Order ticket")
    await ticket.get_by_label("Symbol").select_option("BTCUSDT")
    await ticket.get_by_label("Side").select_option("buy")
    await ticket.get_by_label("Quantity").fill(ORDER_QTY)
    await ticket.get_by_label("Order type").select_option("market")
    await ticket.get_by_role("button", name="Send order").click()
    accepted = region(page, "Order ticket").get_by_role("status")
    await expect(accepted).to_have_text(re.compile(r"^Order \S+ accepted"))
    order_id = (await accepted.inner_text()).split()[1]

    orders = page.get_by_role("table", name="Orders")
    order_row = orders.get_by_role("row").filter(has_text=order_id)
    await expect(order_row).to_contain_text("filled")
    await expect(order_row).to_contain_text("BTCUSDT")
    positions = page.get_by_role("table", name="Positions")
    position_row = positions.get_by_role("row", name=re.compile("^BTCUSDT "))
    await expect(position_row).to_contain_text("long")
    await expect(position_row.get_by_role("cell").nth(1)).to_have_text(ORDER_QTY)
    equity_curve = page.get_by_role("img", name="Equity curve of this session")
    await expect(equity_curve.locator("canvas").first).to_be_visible()
    await snap(page, "03-order-filled")


async def stop_strategy(page: Page, name: str) -> None:
    strategies = page.get_by_role("table", name="Strategies")
    strategy_row = strategies.get_by_role("row", name=re.compile(f"^{name} "))
    await expect(strategy_row).to_contain_text("running")
    await strategy_row.get_by_role("button", name=f"Stop strategy {name}").click()
    await expect(strategy_row).to_contain_text("stopped")
    await expect(strategy_row.get_by_role("button", name=f"Start strategy {name}")).to_be_visible()
    await snap(page, "04-strategy-stopped")


async def hit_kill_switch(page: Page, running: RunningPlatform) -> None:
    risk = region(page, "Risk")
    state = risk.locator(".state")
    await expect(state).to_have_text("active")
    await risk.get_by_role("button", name="Halt trading (kill switch)").click()
    await expect(state).to_have_text("halted")
    trading = running.platform.trading
    assert trading is not None and str(trading.risk.state) == "halted"
    await snap(page, "05-halted")
    await risk.get_by_role("button", name="Resume trading").click()
    await expect(state).to_have_text("active")
    assert str(trading.risk.state) == "active"
    await snap(page, "06-resumed")


async def alert_fires(page: Page) -> None:
    price = await last_price(page, "BTCUSDT")
    form = page.get_by_role("form", name="New alert")
    await form.get_by_label("Alert symbol").select_option("BTCUSDT")
    await form.get_by_label("Condition").select_option("below")
    # 1% above the last trade: the next trade is at or below it, so the alert fires.
    await form.get_by_label("Level").fill(f"{price * 1.01:.2f}")
    await form.get_by_label("Alert name").fill("btc-below-test")
    await form.get_by_role("button", name="Create alert").click()
    feed = page.get_by_role("list", name="Alert feed")
    await expect(feed.get_by_role("listitem").filter(has_text="BTCUSDT")).to_have_count(1)
    alerts = page.get_by_role("table", name="Alerts")
    cells = alerts.get_by_role("row", name=re.compile("^btc-below-test ")).get_by_role("cell")
    await expect(cells.nth(4)).to_have_text("1")  # fired once
    await expect(cells.nth(3)).to_have_text("no")  # a "once" alert is deactivated after it fired
    await snap(page, "07-alert-fired")


async def test_dashboard_logs_in_trades_stops_a_strategy_halts_and_fires_an_alert(
    tmp_path: Path,
) -> None:
    if not (DIST_DIR / "index.html").is_file():
        pytest.fail(f"the dashboard is not built in {DIST_DIR}: run `make web`", pytrace=False)
    async with served_platform(tmp_path) as running, chromium() as browser:
        await create_running_strategy(running, "sma-eth-browser")
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # The page's Content-Security-Policy must allow everything the dashboard does.
        page.on(
            "console",
            lambda message: (
                errors.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        await log_in(page, running)
        await see_prices_move(page)
        await send_paper_order(page)
        await stop_strategy(page, "sma-eth-browser")
        await hit_kill_switch(page, running)
        await alert_fires(page)
        await page.get_by_role("button", name="Log out").click()
        await expect(page.get_by_role("button", name="Log in")).to_be_visible()
        assert errors == [], f"the page raised: {errors}"
