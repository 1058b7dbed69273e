"""``trademk backtest`` and ``trademk optimize`` as a user runs them: real processes.

The data is backtesting.py's GOOG daily bars written to a CSV; the numbers checked
are the ones backtesting.py prints for its SmaCross example (fast 10, slow 20,
cash 10,000, commission 0.2 %).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from backtesting.test import GOOG
from typer.testing import CliRunner

from trademk.backtest.stats import STAT_NAMES
from trademk.backtest.trades import TRADE_COLUMNS
from trademk.cli import app
from trademk.domain.market import Tick, TickKind
from trademk.storage.ticks.duckdb_store import DuckDBTickStore

TRADEMK = str(Path(sys.executable).parent / "trademk")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.timeout(120)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    prefixes = ("DATABASE_", "REDIS_", "TICKSTORE_", "QUESTDB_", "CRYPTO_", "STOCK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update({"DATA_DIR": str(tmp_path / "data"), "ENVIRONMENT": "development", **extra})
    return env


def trademk(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRADEMK, *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=100,
    )


@pytest.fixture
def goog_csv(tmp_path: Path) -> Path:
    path = tmp_path / "goog.csv"
    GOOG.to_csv(path)
    return path


def stat_line(output: str, name: str) -> str:
    """The row of the printed statistics table that starts with ``name``."""
    rows = [line for line in output.splitlines() if line.strip("│┃ ").startswith(name)]
    assert rows, f"no {name!r} row in:\n{output}"
    return rows[0]


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_the_acceptance_command_prints_the_stats_table_and_writes_the_report(
    tmp_path: Path, goog_csv: Path
) -> None:
    result = trademk(
        tmp_path,
        *("backtest", "sma_cross", "--data", "goog.csv", "--cash", "10000"),
        *("--commission", "0.002", "--report", "r.html"),
    )

    assert result.returncode == 0, result.stderr
    assert "56263.52" in stat_line(result.stdout, "Equity Final [$]")
    assert stat_line(result.stdout, "# Trades").split()[-2:] == ["93", "│"]
    assert "462.64" in stat_line(result.stdout, "Return [%]")
    assert "0.6007" in stat_line(result.stdout, "Sharpe Ratio")
    assert "-33.93" in stat_line(result.stdout, "Max. Drawdown [%]")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Price and trades" in page and "Plotly.newPlot" in page
    assert (tmp_path / "r.png").read_bytes().startswith(PNG_MAGIC)
    assert "report: r.html, r.png" in result.stderr


def test_json_output_has_the_stats_and_trades_with_durations_in_days(
    tmp_path: Path, goog_csv: Path
) -> None:
    payload = as_json(
        trademk(
            tmp_path,
            *("backtest", "sma_cross", "--data", "goog.csv", "--commission", "0.002"),
            *("--json", "--close-at-end"),
        )
    )

    stats, trades = payload["stats"], payload["trades"]
    assert list(stats) == list(STAT_NAMES)
    assert stats["Duration"] == 3116.0  # GOOG runs 2004-08-19 .. 2013-03-01
    assert stats["Start"] == "2004-08-19T00:00:00+00:00"
    # --close-at-end counts the position left open on the last bar as a 94th trade.
    assert stats["# Trades"] == len(trades) == 94
    assert payload["open_position"] is None
    for trade in trades:
        held = pd.Timestamp(trade["ExitTime"]) - pd.Timestamp(trade["EntryTime"])
        assert trade["Duration"] == held / pd.Timedelta(days=1)
    assert trades[0]["Duration"] == 19.0
    assert stats["Max. Trade Duration"] == max(t["Duration"] for t in trades)
    assert list(trades[0]) == list(TRADE_COLUMNS)


def test_param_sets_the_strategy_parameters(tmp_path: Path, goog_csv: Path) -> None:
    payload = as_json(
        trademk(
            tmp_path,
            *("backtest", "sma_cross", "--data", "goog.csv", "--json"),
            *("--param", "fast=5", "--param", "slow=30", "--param", "allow_short=false"),
        )
    )

    assert payload["params"] == {"fast": 5, "slow": 30, "allow_short": False}
    assert payload["trades"] and all(trade["Size"] > 0 for trade in payload["trades"])


def test_the_event_engine_makes_the_same_trades_as_the_fast_path(
    tmp_path: Path, goog_csv: Path
) -> None:
    args = ("backtest", "sma_cross", "--data", "goog.csv", "--commission", "0.002", "--json")
    fast = as_json(trademk(tmp_path, *args, "--engine", "fast"))
    event = as_json(trademk(tmp_path, *args, "--engine", "event"))

    assert (fast["engine"], event["engine"]) == ("fast", "event")
    assert len(event["trades"]) == len(fast["trades"]) == 93
    for ours, theirs in zip(event["trades"], fast["trades"], strict=True):
        numbers = {k for k, v in theirs.items() if isinstance(v, float)}
        assert {k: ours[k] for k in numbers} == pytest.approx({k: theirs[k] for k in numbers})
        assert {k: v for k, v in ours.items() if k not in numbers} == {
            k: v for k, v in theirs.items() if k not in numbers
        }
    assert event["stats"]["Equity Final [$]"] == pytest.approx(56263.52, abs=0.01)


def test_a_bad_strategy_exits_2_with_a_clear_message(tmp_path: Path, goog_csv: Path) -> None:
    result = trademk(tmp_path, "backtest", "nope", "--data", "goog.csv")

    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown strategy 'nope' (known: ")
    assert "sma_cross" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("backtest", "sma_cross", "--param", "fast=0"), "parameter 'fast' must be >= 1, got 0"),
        (("backtest", "sma_cross", "--param", "speed=3"), "sma_cross has no parameter 'speed'"),
        (("backtest", "sma_cross", "--param", "fast=30"), "sma_cross needs fast < slow"),
        (("backtest", "sma_cross", "--param", "fast=ten"), "parameter 'fast' must be a int"),
        (("backtest", "sma_cross", "--param", "fast"), "--param takes name=value"),
        (("optimize", "sma_cross", "--grid", "fast=5:20:0.5"), "integer parameter takes whole"),
        (("optimize", "sma_cross", "--grid", "fast=5:9", "--maximize", "Luck"), "no statistic"),
        (
            ("optimize", "sma_cross", "--grid", "fast=5:9", "--constraint", "__import__('os')"),
            "Call is not allowed",
        ),
    ],
)
def test_bad_parameters_grids_and_constraints_exit_2_with_a_clear_message(
    goog_csv: Path, args: tuple[str, ...], message: str
) -> None:
    # In-process (the same command function); the real process is exercised above.
    result = CliRunner().invoke(app, [*args, "--data", str(goog_csv)])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert result.stdout == ""


def test_optimize_ranks_the_grid_under_the_constraint_and_reports_a_heatmap(
    tmp_path: Path, goog_csv: Path
) -> None:
    args = (
        *("optimize", "sma_cross", "--data", "goog.csv", "--commission", "0.002"),
        *("--grid", "fast=5:20:5", "--grid", "slow=20:60:10", "--maximize", "Equity Final [$]"),
        *("--constraint", "slow >= 2 * fast", "--workers", "2"),
    )
    printed = trademk(tmp_path, *args, "--report", "opt.html")
    payload = as_json(trademk(tmp_path, *args, "--json"))

    assert printed.returncode == 0, printed.stderr
    assert "Best: sma_cross(fast=10, slow=20, allow_short=True)" in printed.stdout
    rows = payload["results"]
    combos = {(r["fast"], r["slow"]) for r in rows}
    expected = {(f, s) for f in (5, 10, 15, 20) for s in (20, 30, 40, 50, 60) if s >= 2 * f}
    assert combos == expected
    finals = [r["Equity Final [$]"] for r in rows]
    assert finals == sorted(finals, reverse=True)
    assert payload["best_params"] == {"fast": 10, "slow": 20, "allow_short": True}
    assert finals[0] == pytest.approx(56263.52, abs=0.01)
    page = (tmp_path / "opt.html").read_text(encoding="utf-8")
    assert '"type":"heatmap"' in page and "Equity Final [$] by fast and slow" in page


async def _store_goog_as_ticks(path: Path, symbol: str) -> None:
    """One trade print per OHLC value of each GOOG day, so the store's 1d bars are GOOG's."""
    store = DuckDBTickStore(str(path))
    await store.start()
    hour = 3_600_000_000_000
    ticks = []
    for day, row in zip(GOOG.index, GOOG.itertuples(), strict=True):
        midnight = pd.Timestamp(day, tz="UTC").value
        for offset, price in enumerate((row.Open, row.High, row.Low, row.Close), start=1):
            ts = midnight + offset * hour
            ticks.append(Tick(symbol, "TEST", TickKind.TRADE, ts, float(price), 1.0, received=ts))
    try:
        await store.write(ticks)
    finally:
        await store.close()


def test_backtest_reads_stored_bars_by_symbol(tmp_path: Path) -> None:
    store_path = tmp_path / "ticks.duckdb"
    asyncio.run(_store_goog_as_ticks(store_path, "GOOGL"))

    payload = as_json(
        trademk(
            tmp_path,
            *("backtest", "sma_cross", "--symbol", "googl", "--interval", "1d"),
            *("--start", "2004-01-01", "--end", "2014-01-01", "--commission", "0.002", "--json"),
            TICKSTORE_URL=f"duckdb:///{store_path}",
        )
    )
    unknown = trademk(
        tmp_path,
        *("backtest", "sma_cross", "--symbol", "NOPE", "--start", "2004-01-01"),
        TICKSTORE_URL=f"duckdb:///{store_path}",
    )

    assert payload["stats"]["# Trades"] == 93
    assert payload["stats"]["Equity Final [$]"] == pytest.approx(56263.52, abs=0.01)
    assert unknown.returncode == 2 and "unknown symbol 'NOPE'" in unknown.stderr
