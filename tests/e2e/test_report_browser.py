"""The reports the CLI writes, opened in headless Chromium: the charts really render.

Uses Debian's Chromium (``apt-get install -y chromium``) through Playwright; a
screenshot of each page is saved under ``test-artifacts/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from backtesting.test import GOOG
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TRADEMK = str(Path(sys.executable).parent / "trademk")

pytestmark = pytest.mark.timeout(120)

# What the page holds once plotly has drawn it.
RENDERED = """() => {
  const count = (selector) => document.querySelectorAll(selector).length;
  const drawn = (selector) => Array.from(document.querySelectorAll(selector))
    .filter((path) => (path.getAttribute("d") || "").length > 20).length;
  return {
    plots: count(".js-plotly-plot .main-svg"),
    subplots: Array.from(document.querySelectorAll(".cartesianlayer .subplot"))
      .map((g) => g.getAttribute("class")),
    titles: Array.from(document.querySelectorAll(".annotation-text, .gtitle"))
      .map((t) => t.textContent),
    lines: {
      price: drawn(".subplot.xy .scatterlayer .js-line"),
      equity: drawn(".subplot.x2y2 .scatterlayer .js-line"),
      drawdown: drawn(".subplot.x3y3 .scatterlayer .js-fill"),
    },
    markers: count(".subplot.xy .scatterlayer .point"),
    heatmaps: count(".heatmaplayer .hm image"),
  };
}"""


def _run(tmp_path: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env["DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [TRADEMK, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(run `apt-get install -y chromium`)"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _open(browser: Browser, report: Path) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(report.as_uri())
    await page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    return page, errors


async def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def test_the_backtest_report_shows_price_trades_equity_and_drawdown(
    browser: Browser, tmp_path: Path
) -> None:
    GOOG.to_csv(tmp_path / "goog.csv")
    _run(
        tmp_path,
        *("backtest", "sma_cross", "--data", "goog.csv", "--cash", "10000"),
        *("--commission", "0.002", "--report", "r.html"),
    )

    page, errors = await _open(browser, tmp_path / "r.html")
    seen: dict[str, Any] = await page.evaluate(RENDERED)
    await _screenshot(page, "backtest-report.png")

    assert errors == []
    assert seen["plots"] >= 1
    assert seen["subplots"] == ["subplot xy", "subplot x2y2", "subplot x3y3"]
    assert seen["titles"] == ["Price and trades", "Equity", "Drawdown [%]"]
    assert seen["lines"] == {"price": 1, "equity": 1, "drawdown": 1}
    assert seen["markers"] == 2 * 93  # an entry and an exit marker per trade
    assert await page.locator("table.stats").inner_text() != ""
    assert "56,263.5193" in await page.locator("table.stats").inner_text()


async def test_the_optimisation_report_shows_the_heatmap(browser: Browser, tmp_path: Path) -> None:
    GOOG.to_csv(tmp_path / "goog.csv")
    _run(
        tmp_path,
        *("optimize", "sma_cross", "--data", "goog.csv", "--commission", "0.002"),
        *("--grid", "fast=5:20:5", "--grid", "slow=20:60:10", "--workers", "2"),
        *("--maximize", "Sharpe Ratio", "--report", "opt.html"),
    )

    page, errors = await _open(browser, tmp_path / "opt.html")
    seen: dict[str, Any] = await page.evaluate(RENDERED)
    await _screenshot(page, "optimization-report.png")

    assert errors == []
    assert seen["heatmaps"] == 1
    assert seen["titles"] == ["Sharpe Ratio by fast and slow"]
    colour_bar = await page.locator(".colorbar .cbtitle").text_content()
    assert colour_bar == "Sharpe Ratio"
