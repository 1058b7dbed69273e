"""Checks of a backtest request before it is queued: each failure names its field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from trademk.backtest.api import ENGINES, RunSettings
from trademk.backtest.jobs.model import (
    BacktestRequest,
    FileData,
    InvalidBacktestRequest,
    TickStoreData,
)
from trademk.backtest.jobs.results import error_text
from trademk.domain.market import SUPPORTED_BAR_INTERVALS
from trademk.strategies.params import ParamError, ParamValue
from trademk.strategies.registry import get_strategy

__all__ = ["DATA_SUFFIXES", "check_request"]

DATA_SUFFIXES: Final = (".csv", ".csv.gz", ".txt", ".parquet", ".pq")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_strategy(request: BacktestRequest) -> dict[str, ParamValue]:
    try:
        cls = get_strategy(request.strategy)
    except KeyError as err:
        raise InvalidBacktestRequest("strategy", error_text(err)) from None
    try:
        params = cls(**request.params).param_values
    except ParamError as err:
        raise InvalidBacktestRequest("params", str(err)) from None
    if request.engine not in ENGINES:
        raise InvalidBacktestRequest(
            "engine", f"unknown engine {request.engine!r}: use one of {', '.join(ENGINES)}"
        )
    if request.engine == "fast" and not (cls.has_signals() and cls.uses_default_on_bar()):
        raise InvalidBacktestRequest(
            "engine", f"{request.strategy} decides in on_bar: it runs only on the event engine"
        )
    return params


def _check_settings(request: BacktestRequest) -> None:
    checks: tuple[tuple[str, Callable[[], RunSettings]], ...] = (
        ("cash", lambda: RunSettings(cash=request.cash)),
        ("commission", lambda: RunSettings(commission=request.commission)),
    )
    for name, check in checks:
        try:
            check()
        except ValueError as err:
            raise InvalidBacktestRequest(name, str(err)) from None


def _check_range(data: TickStoreData, known_symbol: Callable[[str], str]) -> TickStoreData:
    try:
        symbol = known_symbol(data.symbol)
    except LookupError as err:
        raise InvalidBacktestRequest("symbol", error_text(err)) from None
    if data.interval not in SUPPORTED_BAR_INTERVALS:
        raise InvalidBacktestRequest(
            "interval",
            f"unsupported interval {data.interval!r}: use one of "
            f"{', '.join(SUPPORTED_BAR_INTERVALS)}",
        )
    start, end = _utc(data.start), _utc(data.end)
    if start >= end:
        raise InvalidBacktestRequest(
            "start", f"start {start.isoformat()} must be before end {end.isoformat()}"
        )
    return TickStoreData(symbol, data.interval, start, end)


def _check_file(data: FileData, data_dir: Path) -> FileData:
    root = data_dir.resolve()
    try:
        given = Path(data.path)
        resolved = (given if given.is_absolute() else root / given).resolve()
    except (OSError, ValueError) as err:
        raise InvalidBacktestRequest("data_file", f"invalid path {data.path!r}: {err}") from None
    if not resolved.is_relative_to(root):
        raise InvalidBacktestRequest(
            "data_file", f"{data.path!r} is outside the server's data directory (DATA_DIR)"
        )
    if not resolved.name.lower().endswith(DATA_SUFFIXES):
        raise InvalidBacktestRequest(
            "data_file", f"unsupported data file {data.path!r}: use .csv or .parquet"
        )
    if not resolved.is_file():
        raise InvalidBacktestRequest(
            "data_file", f"no data file {data.path!r} in the server's data directory"
        )
    return FileData(resolved.relative_to(root).as_posix())


def check_request(
    request: BacktestRequest, *, data_dir: Path, known_symbol: Callable[[str], str]
) -> BacktestRequest:
    """``request`` with its parameters completed, the symbol canonical and times in UTC
    (or the file path made relative to ``data_dir``); ``InvalidBacktestRequest`` naming
    the field if it cannot run."""
    params = _check_strategy(request)
    _check_settings(request)
    if isinstance(request.data, TickStoreData):
        data: TickStoreData | FileData = _check_range(request.data, known_symbol)
    else:
        data = _check_file(request.data, data_dir)
    return replace(request, params=params, data=data)
