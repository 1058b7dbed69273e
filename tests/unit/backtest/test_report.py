from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from trademk.backtest import backtest
from trademk.backtest.report import MAX_POINTS


def frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    index = pd.date_range("2023-01-01", periods=n, freq="min")
    return pd.DataFrame(
        {"Open": close, "High": close * 1.001, "Low": close * 0.999, "Close": close}, index=index
    )


def test_html_report_is_self_contained_with_charts_stats_and_trades(tmp_path: Path) -> None:
    result = backtest("sma_cross", frame(3_000), cash=10_000, commission=0.001)
    written = result.plot(tmp_path / "report.html")
    assert written == [tmp_path / "report.html", tmp_path / "report.png"]
    page = written[0].read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", page)  # nothing loaded from elsewhere
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inlined
    for title in ("Price and trades", "Equity", "Drawdown [%]", "Sharpe Ratio", "EntryPrice"):
        assert title in page
    assert written[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_long_runs_are_thinned_and_png_only_paths(tmp_path: Path) -> None:
    result = backtest("momentum", frame(4 * MAX_POINTS), cash=10_000)
    png = result.plot(tmp_path / "only.png")
    assert png == [tmp_path / "only.png"] and not (tmp_path / "only.html").exists()
    from trademk.backtest.report import _thin

    thinned = _thin(result)
    assert len(thinned) <= MAX_POINTS
    assert thinned["Equity"].iloc[-1] == result.equity.iloc[-1]
    assert thinned["Drawdown"].min() == -result.drawdown.max() * 100
