"""The web dashboard in headless Chromium against the platform split into processes.

`trademk api` serves the dashboard; an ingest worker, an execution worker and
the strategies worker do the rest over Redis and PostgreSQL. The operator's
view must not change: prices move (relayed from the ingest worker), a paper
order fills (in the execution worker), a strategy stops (in the strategies
worker), the kill switch halts and resumes the execution worker, an alert
fires. Screenshots go to test-artifacts/dashboard-split/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e import test_dashboard_browser as dashboard
from tests.e2e.test_split_deployment import ADMIN, Processes, _deployment, _ready
from tests.integration.security.conftest import bearer
from trademk.api.routes.dashboard import DIST_DIR

pytestmark = pytest.mark.timeout(240)


@dataclass
class SplitDashboard:
    base_url: str
    admin_token: str
    processes: Processes


@pytest.fixture
def split(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str
) -> Iterator[tuple[str, Processes]]:
    with _deployment(
        tmp_path,
        fresh_postgres_url,
        redis_url,
        ["execution", "strategies"],
        CRYPTO_SYMBOLS="BTCUSDT,ETHUSDT,SOLUSDT",
        SIM_TICKS_PER_SECOND="400",
    ) as running:
        yield running


async def log_in(page: Page, base_url: str) -> None:
    await page.goto(f"{base_url}/app")
    await expect(page.get_by_role("heading", name="Trademk")).to_be_visible()
    await page.get_by_label("Email").fill(ADMIN["email"])
    await page.get_by_label("Password").fill(ADMIN["password"])
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("status", name="Live connection")).to_have_text("Live")
    await dashboard.snap(page, "01-logged-in")


async def hit_kill_switch(page: Page, running: SplitDashboard) -> None:
    """The kill switch on the page halts the execution worker, and resume lifts it."""
    risk = dashboard.region(page, "Risk")
    state = risk.locator(".state")
    await expect(state).to_have_text("active")
    await risk.get_by_role("button", name="Halt trading (kill switch)").click()
    await expect(state).to_have_text("halted")
    assert await worker_state(running) == "halted"
    await dashboard.snap(page, "05-halted")
    await risk.get_by_role("button", name="Resume trading").click()
    await expect(state).to_have_text("active")
    assert await worker_state(running) == "active"


async def worker_state(running: SplitDashboard) -> str:
    """What the execution worker itself reports (its heartbeat, in the API's health)."""
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        state = await client.get("/api/v1/trading/state", headers=bearer(running.admin_token))
    assert state.status_code == 200, state.text
    return str(state.json()["state"])


async def test_the_dashboard_on_trademk_api_trades_steers_and_alerts_through_the_workers(
    split: tuple[str, Processes], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (DIST_DIR / "index.html").is_file():
        pytest.fail(f"the dashboard is not built in {DIST_DIR}: run `make web`", pytrace=False)
    monkeypatch.setattr(dashboard, "ARTIFACTS", dashboard.ARTIFACTS.parent / "dashboard-split")
    url, processes = split
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        auth = await _ready(http, processes, execution_workers=1)
    token = auth["Authorization"].removeprefix("Bearer ")
    running = SplitDashboard(url, token, processes)
    # The helper needs only base_url and admin_token of what it is given.
    await dashboard.create_running_strategy(running, "sma-eth-split")
    async with dashboard.chromium() as browser:
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(dashboard.UI_TIMEOUT_MS)
        expect.set_options(timeout=dashboard.UI_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await log_in(page, url)
        await dashboard.see_prices_move(page)
        await dashboard.send_paper_order(page)
        await dashboard.stop_strategy(page, "sma-eth-split")
        await hit_kill_switch(page, running)
        await dashboard.alert_fires(page)
        processes.check_alive()
        assert errors == [], f"the page raised: {errors}"
