"""Reports of a backtest: an HTML page with interactive plotly charts, and a PNG.

The HTML is self-contained: plotly's JavaScript is inlined from the installed
package (no CDN: it opens offline). Both show the price with the trades'
entries and exits, the equity curve and the drawdown, plus (HTML) the
statistics and the trade list. Long series are thinned to about
``MAX_POINTS`` points per chart (last close and equity, deepest drawdown of
each bucket) so a million-bar run still opens quickly; trade markers keep
their exact times.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from trademk.backtest.result import BacktestResult

__all__ = ["MAX_POINTS", "write_html_report", "write_png_report"]

MAX_POINTS: Final = 5_000
MAX_TRADE_ROWS: Final = 1_000
MAX_MARKERS: Final = 5_000


def _thin(result: BacktestResult) -> pd.DataFrame:
    """Close, equity and drawdown (%) per bar, bucketed down to at most ``MAX_POINTS``."""
    frame = pd.DataFrame(
        {
            "Close": result.data["Close"].to_numpy(),
            "Equity": result.equity.to_numpy(),
            "Drawdown": -result.drawdown.to_numpy() * 100,
        },
        index=result.equity.index,
    )
    step = int(np.ceil(len(frame) / MAX_POINTS))
    if step <= 1:
        return frame
    groups = np.arange(len(frame)) // step
    thinned = frame.groupby(groups).agg({"Close": "last", "Equity": "last", "Drawdown": "min"})
    thinned.index = frame.index[np.minimum((thinned.index + 1) * step - 1, len(frame) - 1)]
    return thinned


def _markers(trades: pd.DataFrame) -> dict[str, pd.DataFrame]:
    shown = trades.tail(MAX_MARKERS)
    longs = shown["Size"] > 0
    return {
        "long entry": shown.loc[longs, ["EntryTime", "EntryPrice"]],
        "short entry": shown.loc[~longs, ["EntryTime", "EntryPrice"]],
        "exit": shown[["ExitTime", "ExitPrice"]],
    }


def _figure(result: BacktestResult) -> object:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    series = _thin(result)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.55, 0.25, 0.2],
        vertical_spacing=0.03,
        subplot_titles=("Price and trades", "Equity", "Drawdown [%]"),
    )
    fig.add_trace(go.Scatter(x=series.index, y=series["Close"], name="Close", line={"width": 1}))
    styles = {
        "long entry": ("triangle-up", "#2ca02c"),
        "short entry": ("triangle-down", "#d62728"),
        "exit": ("x", "#333333"),
    }
    for label, points in _markers(result.trades).items():
        symbol, colour = styles[label]
        fig.add_trace(
            go.Scatter(
                x=points.iloc[:, 0],
                y=points.iloc[:, 1],
                mode="markers",
                name=label,
                marker={"symbol": symbol, "color": colour, "size": 8},
            ),
            row=1,
            col=1,
        )
    fig.add_trace(go.Scatter(x=series.index, y=series["Equity"], name="Equity"), row=2, col=1)
    fig.add_trace(
        go.Scatter(x=series.index, y=series["Drawdown"], name="Drawdown", fill="tozeroy"),
        row=3,
        col=1,
    )
    fig.update_layout(height=900, margin={"l": 50, "r": 20, "t": 40, "b": 30}, hovermode="x")
    return fig


def _stats_table(result: BacktestResult) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(_cell(value))}</td></tr>"
        for name, value in result.stats.items()
    )
    return f'<table class="stats">{rows}</table>'


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):,.4f}" if np.isfinite(value) else str(value)
    return str(value)


def _trades_table(result: BacktestResult) -> str:
    trades = result.trades.drop(columns=["Duration"]).head(MAX_TRADE_ROWS)
    note = ""
    if len(result.trades) > MAX_TRADE_ROWS:
        note = f"<p>First {MAX_TRADE_ROWS} of {len(result.trades)} trades.</p>"
    table: str = trades.to_html(index=False, float_format=lambda v: f"{v:,.4f}", border=0)
    return note + table


def write_html_report(result: BacktestResult, path: Path) -> Path:
    """Write the interactive HTML report to ``path``; returns it."""
    from plotly.offline import get_plotlyjs

    fig = _figure(result)
    chart = fig.to_html(include_plotlyjs=False, full_html=False)  # type: ignore[attr-defined]
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    settings = ", ".join(f"{k}={v}" for k, v in result.settings.items())
    title = html.escape(f"{result.strategy}({params})")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Backtest {title}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ padding: 2px 10px; text-align: right; border-bottom: 1px solid #eee; }}
table.stats th {{ text-align: left; }}
.grid {{ display: grid; grid-template-columns: 22em 1fr; gap: 1.5em; align-items: start; }}
</style></head><body>
<h1>{title}</h1>
<p>Engine: {html.escape(result.engine)}. {html.escape(settings)}</p>
<div class="grid"><div>{_stats_table(result)}</div><div>{chart}</div></div>
<h2>Trades</h2>
{_trades_table(result)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def write_png_report(result: BacktestResult, path: Path) -> Path:
    """Write a static PNG of price with trades, equity and drawdown to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = _thin(result)
    figure = Figure(figsize=(12, 8), dpi=100)
    FigureCanvasAgg(figure)
    price, equity, drawdown = figure.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1]}
    )
    price.plot(series.index, series["Close"], linewidth=0.8, color="#1f77b4", label="Close")
    colours = {
        "long entry": ("^", "#2ca02c"),
        "short entry": ("v", "#d62728"),
        "exit": ("x", "#333"),
    }
    for label, points in _markers(result.trades).items():
        marker, colour = colours[label]
        price.scatter(points.iloc[:, 0], points.iloc[:, 1], marker=marker, color=colour, s=18,
                      label=label, zorder=3)  # fmt: skip
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    price.set_title(f"{result.strategy}({params}) — {result.engine} engine")
    price.legend(loc="upper left", fontsize=8)
    equity.plot(series.index, series["Equity"], color="#ff7f0e", linewidth=1)
    equity.set_ylabel("Equity")
    drawdown.fill_between(series.index, series["Drawdown"], 0, color="#d62728", alpha=0.4)
    drawdown.set_ylabel("Drawdown [%]")
    for axis in (price, equity, drawdown):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
