"""The report of a parameter sweep: heatmaps of the objective and the best combinations.

One self-contained HTML page (plotly's JavaScript inlined, as in
``trademk.backtest.report``): a heatmap of the objective for each pair of swept
parameters (other parameters at their best value for each cell), or a line chart when
only one parameter varies, then the best combinations as a table.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from trademk.backtest.optimize import OptimizationResult

__all__ = ["MAX_HEATMAPS", "TABLE_STATS", "write_optimization_report"]

MAX_HEATMAPS: Final = 6
TABLE_STATS: Final = (
    "Return [%]",
    "Sharpe Ratio",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "# Trades",
    "Equity Final [$]",
)


def _cells(frame: pd.DataFrame) -> list[list[float | None]]:
    values = frame.to_numpy(dtype=np.float64)
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]


def _heatmap(result: OptimizationResult, x: str, y: str) -> Any:
    import plotly.graph_objects as go

    grid = result.heatmap(x, y)
    figure = go.Figure(
        go.Heatmap(
            z=_cells(grid),
            x=[str(v) for v in grid.columns],
            y=[str(v) for v in grid.index],
            colorscale="Viridis",
            colorbar={"title": {"text": result.maximize}},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{result.maximize}=%{{z}}<extra></extra>",
        )
    )
    figure.update_layout(
        title={"text": f"{result.maximize} by {x} and {y}"},
        xaxis={"title": {"text": x}, "type": "category"},
        yaxis={"title": {"text": y}, "type": "category"},
        height=480,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return figure


def _line(result: OptimizationResult, x: str) -> Any:
    import plotly.graph_objects as go

    best = result.table.astype({result.maximize: np.float64}).groupby(x)[result.maximize].max()
    figure = go.Figure(
        go.Scatter(x=list(best.index), y=list(best.to_numpy()), mode="lines+markers")
    )
    figure.update_layout(
        title={"text": f"{result.maximize} by {x}"},
        xaxis={"title": {"text": x}},
        yaxis={"title": {"text": result.maximize}},
        height=420,
    )
    return figure


def _figures(result: OptimizationResult, varied: Sequence[str]) -> list[Any]:
    if len(varied) == 1:
        return [_line(result, varied[0])]
    pairs = list(itertools.combinations(varied, 2))[:MAX_HEATMAPS]
    return [_heatmap(result, x, y) for x, y in pairs]


def _table(result: OptimizationResult, top: int) -> str:
    stats = [result.maximize, *(s for s in TABLE_STATS if s != result.maximize)]
    shown = result.table[[*result.param_names, *stats]].head(top)
    table: str = shown.to_html(index=False, border=0, float_format=lambda v: f"{v:,.4f}")
    return table


def write_optimization_report(
    result: OptimizationResult,
    path: Path,
    *,
    strategy: str,
    varied: Sequence[str],
    settings: Mapping[str, Any] | None = None,
    top: int = 25,
) -> Path:
    """Write the sweep report to ``path`` (see the module docstring); returns it.

    ``varied`` names the swept parameters with more than one value.
    """
    from plotly.offline import get_plotlyjs

    if not varied:
        raise ValueError("nothing varied in the sweep: give a --grid with several values")
    charts = "".join(
        f'<div class="chart">{fig.to_html(include_plotlyjs=False, full_html=False)}</div>'
        for fig in _figures(result, varied)
    )
    best = ", ".join(f"{k}={v}" for k, v in result.best_params.items())
    described = ", ".join(f"{k}={v}" for k, v in (settings or {}).items())
    title = html.escape(f"Optimisation of {strategy}: {result.maximize}")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ padding: 2px 10px; text-align: right; border-bottom: 1px solid #eee; }}
.chart {{ max-width: 900px; }}
</style></head><body>
<h1>{title}</h1>
<p>{len(result.table)} combinations. {html.escape(described)}</p>
<p>Best: <strong>{html.escape(best)}</strong></p>
{charts}
<h2>Best {min(top, len(result.table))} combinations</h2>
{_table(result, top)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
