"""``trademk backtest`` and ``trademk optimize``: run strategies on history from the shell.

Data comes from a CSV/Parquet file (``--data``) or from the tick store of the
configured platform (``--symbol`` with ``--start``/``--end``/``--interval``). Bad
input (unknown strategy, parameter out of range, unreadable data) ends with
``error: ...`` on stderr and exit code 2. Progress goes to stderr, so ``--json``
output on stdout stays parseable.
"""

from __future__ import annotations

import asyncio
import enum
import math
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from trademk.config import load_settings
from trademk.domain.market import SUPPORTED_BAR_INTERVALS
from trademk.engine.clock import LiveClock, datetime_to_ns, utc_now

if TYPE_CHECKING:
    import pandas as pd

    from trademk.strategies.base import Strategy
    from trademk.strategies.params import ParamValue

__all__ = ["backtest_command", "optimize_command", "register_backtest_commands"]

T = TypeVar("T")
PROGRESS_DELAY: Final = 0.5
out = Console()
err = Console(stderr=True)


class Engine(enum.StrEnum):
    """The engines a command can ask for."""

    EVENT = "event"
    FAST = "fast"


StrategyArg = Annotated[str, typer.Argument(help="Registered strategy name, e.g. sma_cross.")]
DataOpt = Annotated[
    Path | None, typer.Option("--data", help="OHLCV CSV or Parquet file.", dir_okay=False)
]
SymbolOpt = Annotated[str | None, typer.Option(help="Symbol whose stored bars to use.")]
StartOpt = Annotated[str | None, typer.Option(help="With --symbol: start, ISO 8601 (UTC).")]
EndOpt = Annotated[str | None, typer.Option(help="With --symbol: end (exclusive); default now.")]
IntervalOpt = Annotated[
    str, typer.Option(help=f"With --symbol: bar interval ({', '.join(SUPPORTED_BAR_INTERVALS)}).")
]
CashOpt = Annotated[float, typer.Option(help="Starting cash.")]
CommissionOpt = Annotated[
    float, typer.Option(help="Fraction of traded value charged per fill (0.002 = 0.2 %).")
]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="Strategy parameter name=value (repeatable).")
]
EngineOpt = Annotated[
    Engine | None,
    typer.Option(help="event or fast; default: fast where the strategy has signal columns."),
]
CloseOpt = Annotated[
    bool, typer.Option("--close-at-end", help="Close an open trade on the last bar so it counts.")
]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Write an HTML report here (plus a PNG).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
SweepReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Write an HTML report with heatmaps here.")
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _message(error: BaseException) -> str:
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error) or type(error).__name__


def _strategy(name: str) -> type[Strategy]:
    from trademk.strategies.registry import get_strategy

    try:
        return get_strategy(name)
    except KeyError as error:
        _fail(_message(error))


def _when(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        _fail(f"{option} {text!r} is not an ISO 8601 date or time (e.g. 2024-01-31)")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _stored_bars(
    url: str, symbol: str, interval: str, start: datetime, end: datetime
) -> pd.DataFrame:
    from trademk.backtest.data import load_from_tick_store
    from trademk.storage.ticks import open_tick_store

    store = open_tick_store(url)
    await store.start()
    try:
        return await load_from_tick_store(
            store, symbol, interval, datetime_to_ns(start), datetime_to_ns(end)
        )
    finally:
        await store.close()


def _data(
    data: Path | None, symbol: str | None, start: str | None, end: str | None, interval: str
) -> tuple[pd.DataFrame, str]:
    """The OHLCV frame and the symbol to trade it as."""
    from trademk.backtest.data import DataError, load_ohlcv

    if (data is None) == (symbol is None):
        _fail("give either --data FILE or --symbol S with --start (and --end), not both")
    if data is not None:
        try:
            return load_ohlcv(data), "ASSET"
        except DataError as error:
            _fail(str(error))
    assert symbol is not None
    canonical = symbol.strip().upper()
    settings = load_settings()
    universe = settings.symbols
    if canonical not in universe:
        _fail(f"unknown symbol {symbol!r} (the configured symbols are {', '.join(universe)})")
    if interval not in SUPPORTED_BAR_INTERVALS:
        _fail(f"--interval {interval!r}: use one of {', '.join(SUPPORTED_BAR_INTERVALS)}")
    if start is None:
        _fail("--symbol needs --start")
    begin = _when(start, "--start")
    finish = _when(end, "--end") if end is not None else utc_now(LiveClock())
    if begin >= finish:
        _fail(f"--start {begin.isoformat()} must be before --end {finish.isoformat()}")
    try:
        bars = asyncio.run(
            _stored_bars(settings.tick_store_url, canonical, interval, begin, finish)
        )
    except DataError as error:
        _fail(str(error))
    except Exception as error:  # any backend's connection or lock error, said plainly
        _fail(f"cannot read bars from the tick store: {_message(error)}")
    return bars, canonical


def _with_progress(
    label: str, work: Callable[[Callable[[int, int], None]], T], *, counted: bool = False
) -> T:
    """Run ``work(advance)`` in a thread; past ``PROGRESS_DELAY`` seconds show a progress
    bar on stderr: a pulse, or with ``counted`` the ``advance(done, total)`` count."""
    box: dict[str, Any] = {}
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if counted:
        columns.append(MofNCompleteColumn())
    progress = Progress(*columns, TimeElapsedColumn(), console=err, transient=True)
    task = progress.add_task(label, total=None)

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    def target() -> None:
        try:
            box["value"] = work(advance)
        except BaseException as error:  # re-raised in the caller's thread
            box["error"] = error

    worker = threading.Thread(target=target, name="trademk-backtest", daemon=True)
    worker.start()
    worker.join(PROGRESS_DELAY)
    if worker.is_alive():
        with progress:
            while worker.is_alive():
                worker.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _text(name: str, value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN"
    if isinstance(value, float):
        return f"{value:.2f}" if name.endswith(("[$]", "[%]")) else f"{value:.4f}"
    if value is None:
        return "-"
    return str(value)


def _stats_table(stats: Any) -> Table:
    table = Table(show_header=False)
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for name, value in stats.items():
        plain = value.item() if hasattr(value, "item") and not isinstance(value, str) else value
        table.add_row(Text(name), Text(_text(name, plain)))
    return table


def _print_json(payload: Any) -> None:
    sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")


def _check_params(cls: type[Strategy], specs: list[str] | None) -> dict[str, Any]:
    from trademk.backtest.sweep import parse_params

    try:
        values = parse_params(cls, specs or [])
        cls(**values)  # rules tying parameters together (fast < slow)
    except ValueError as error:
        _fail(str(error))
    return values


def backtest_command(
    strategy: StrategyArg,
    data: DataOpt = None,
    symbol: SymbolOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    interval: IntervalOpt = "1m",
    cash: CashOpt = 10_000.0,
    commission: CommissionOpt = 0.0,
    param: ParamOpt = None,
    engine: EngineOpt = None,
    close_at_end: CloseOpt = False,
    report: ReportOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Backtest a strategy on a data file or on stored bars; print its statistics."""
    from trademk.backtest.api import backtest
    from trademk.backtest.jobs import result_payload

    cls = _strategy(strategy)
    params = _check_params(cls, param)
    frame, traded = _data(data, symbol, start, end, interval)
    label = f"backtesting {strategy} on {len(frame):,} bars"
    try:
        result = _with_progress(
            label,
            lambda _: backtest(
                cls,
                frame,
                cash=cash,
                commission=commission,
                engine=engine or "auto",
                close_at_end=close_at_end,
                symbol=traded,
                **params,
            ),
        )
        written = result.plot(report) if report is not None else []
    except (ValueError, OSError) as error:
        _fail(str(error))
    if as_json:
        _print_json(result_payload(result))
    else:
        shown = ", ".join(f"{k}={v}" for k, v in result.params.items())
        heading = f"{result.strategy}({shown}) on {len(frame):,} bars, {result.engine} engine"
        out.print(heading, markup=False)
        out.print(_stats_table(result.stats))
        if result.open_position is not None:
            still = result.open_position
            out.print(
                f"Open at the end (not counted; --close-at-end closes it): {still.size:g} "
                f"units from {frame.index[still.entry_bar]} at {still.entry_price:g}",
                markup=False,
            )
    if written:
        err.print("report: " + ", ".join(str(path) for path in written), markup=False)


GridOpt = Annotated[
    list[str],
    typer.Option(
        "--grid",
        help="Parameter values: name=first:last[:step] (both ends included) or name=v1,v2,...",
    ),
]
MaximizeOpt = Annotated[str, typer.Option(help="The statistic to maximise (any case).")]
ConstraintOpt = Annotated[
    str | None, typer.Option(help="Condition on parameters, e.g. 'slow >= 2 * fast'.")
]
WorkersOpt = Annotated[int | None, typer.Option(min=1, help="Processes; default every core.")]
TopOpt = Annotated[int, typer.Option(min=1, help="Best combinations to print.")]
SHOWN_STATS: Final = ("Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "# Trades")


def _sweep_plan(
    cls: type[Strategy],
    grid: list[str],
    fixed_specs: list[str] | None,
    maximize: str,
    constraint: str | None,
    engine: Engine | None,
) -> tuple[dict[str, list[ParamValue]], dict[str, ParamValue], Any, str, str, int]:
    """The grid, fixed parameters, constraint, objective, engine and combination count."""
    from trademk.backtest.sweep import (
        Constraint,
        choose_engine,
        expand_grid,
        parse_grid,
        parse_params,
        resolve_stat,
    )

    try:
        objective = resolve_stat(maximize)
        chosen = choose_engine(cls, None if engine is None else engine.value)
        values = parse_grid(cls, grid)
        fixed = parse_params(cls, fixed_specs or [])
        defaults = {name: param.default for name, param in cls.params.items()}
        rule = Constraint(constraint, {**defaults, **fixed}) if constraint else None
        count = len(expand_grid(cls, values, fixed, rule))
    except ValueError as error:
        _fail(str(error))
    return values, fixed, rule, objective, chosen, count


def _results_table(result: Any, names: list[str], top: int) -> Table:
    from trademk.backtest.jobs import json_value

    stats = [result.maximize, *(s for s in SHOWN_STATS if s != result.maximize)]
    shown = min(top, len(result.table))
    title = f"Best {shown} of {len(result.table)} by {result.maximize}"
    table = Table(title=title, title_justify="left")
    for column in (*names, *stats):
        table.add_column(Text(column), justify="right")
    for row in result.table.head(top).to_dict("records"):
        cells = [str(row[n]) for n in names] + [_text(s, json_value(row[s])) for s in stats]
        table.add_row(*(Text(cell) for cell in cells))
    return table


def optimize_command(
    strategy: StrategyArg,
    grid: GridOpt,
    data: DataOpt = None,
    symbol: SymbolOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    interval: IntervalOpt = "1m",
    maximize: MaximizeOpt = "Sharpe Ratio",
    constraint: ConstraintOpt = None,
    param: ParamOpt = None,
    engine: EngineOpt = None,
    workers: WorkersOpt = None,
    cash: CashOpt = 10_000.0,
    commission: CommissionOpt = 0.0,
    close_at_end: CloseOpt = False,
    report: SweepReportOpt = None,
    as_json: JsonOpt = False,
    top: TopOpt = 10,
) -> None:
    """Backtest every combination of a parameter grid over all cores; rank them."""
    from trademk.backtest.jobs import json_value
    from trademk.backtest.optimize import optimize
    from trademk.backtest.optimize_report import write_optimization_report
    from trademk.backtest.sweep import expand_grid, sweep_event

    cls = _strategy(strategy)
    values, fixed, rule, objective, chosen, count = _sweep_plan(
        cls, grid, param, maximize, constraint, engine
    )
    frame, traded = _data(data, symbol, start, end, interval)
    settings: dict[str, Any] = {
        "cash": cash,
        "commission": commission,
        "close_at_end": close_at_end,
    }

    def run(advance: Callable[[int, int], None]) -> Any:
        if chosen == "fast":
            return optimize(
                cls,
                frame,
                values,
                maximize=objective,
                constraint=rule,
                workers=workers,
                fixed=fixed,
                **settings,
            )
        combos = expand_grid(cls, values, fixed, rule)
        return sweep_event(
            cls,
            frame,
            combos,
            maximize=objective,
            workers=workers,
            progress=advance,
            symbol=traded,
            **settings,
        )

    label = f"optimising {strategy}: {count:,} combinations on the {chosen} engine"
    try:
        result = _with_progress(label, run, counted=chosen == "event")
    except ValueError as error:
        _fail(str(error))
    varied = [name for name, options in values.items() if len(options) > 1] or list(values)
    if report is not None:
        try:
            write_optimization_report(
                result,
                report,
                strategy=strategy,
                varied=varied,
                settings={**settings, "engine": chosen, **fixed},
            )
        except OSError as error:
            _fail(f"cannot write the report: {error}")
    if as_json:
        records = result.table.to_dict("records")
        rows = [{k: json_value(v) for k, v in row.items()} for row in records]
        _print_json(
            {
                "maximize": objective,
                "engine": chosen,
                "best_params": result.best_params,
                "results": rows,
            }
        )
    else:
        out.print(_results_table(result, list(values), top))
        best = ", ".join(f"{k}={v}" for k, v in result.best_params.items())
        out.print(f"Best: {strategy}({best})", markup=False)
    if report is not None:
        err.print(f"report: {report}", markup=False)


def register_backtest_commands(app: typer.Typer) -> None:
    """Add ``backtest`` and ``optimize`` to the ``trademk`` command."""
    app.command("backtest")(backtest_command)
    app.command("optimize")(optimize_command)
