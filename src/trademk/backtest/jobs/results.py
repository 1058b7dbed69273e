"""A backtest's results as JSON, and the function a worker process runs for a job."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from trademk.backtest.api import backtest

if TYPE_CHECKING:
    from trademk.backtest.result import BacktestResult

__all__ = ["error_text", "execute_backtest", "json_value", "result_payload"]

_NANOS_PER_DAY: Final = 86_400 * 10**9


def json_value(value: Any) -> Any:
    """A statistic or trade cell as JSON: times in ISO 8601 UTC, durations in days (float),
    NaN/NaT/infinity as None, numpy scalars as Python numbers."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.isoformat()
    if isinstance(value, pd.Timedelta | timedelta | np.timedelta64):
        return pd.Timedelta(value).value / _NANOS_PER_DAY
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_payload(result: BacktestResult) -> dict[str, Any]:
    """``{"strategy", "params", "engine", "stats", "trades", "open_position"}`` as JSON values:
    statistics and trade columns under backtesting.py's names, durations in days."""
    trades = [
        {name: json_value(cell) for name, cell in row.items()}
        for row in result.trades.to_dict("records")
    ]
    still_open = result.open_position
    return {
        "strategy": result.strategy,
        "params": dict(result.params),
        "engine": result.engine,
        "stats": {name: json_value(value) for name, value in result.stats.items()},
        "trades": trades,
        "open_position": None
        if still_open is None
        else {
            "size": json_value(still_open.size),
            "entry_price": json_value(still_open.entry_price),
            "entry_time": json_value(result.data.index[still_open.entry_bar]),
        },
    }


def execute_backtest(
    request: Mapping[str, Any], data: pd.DataFrame | str, report: str
) -> dict[str, Any]:
    """Run one job's backtest (in a worker process): write the HTML and PNG report at
    ``report`` and return ``result_payload``. ``request`` is ``BacktestRequest.to_json()``."""
    result = backtest(
        request["strategy"],
        data,
        cash=request["cash"],
        commission=request["commission"],
        engine=request["engine"],
        close_at_end=request["close_at_end"],
        symbol=request.get("symbol") or "ASSET",
        **request["params"],
    )
    result.plot(report)
    return result_payload(result)


def error_text(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err) or type(err).__name__
