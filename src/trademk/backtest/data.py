"""Backtest input: OHLCV from a CSV or Parquet file, a DataFrame, or the tick store.

Whatever the source, the result is a DataFrame indexed by a ``DatetimeIndex``
(ascending, unique; a time zone is converted to UTC, a naive index is taken
as UTC) with float64 columns ``Open``, ``High``, ``Low``, ``Close``,
``Volume``. Column names are matched in any case; the time is the index when
it already is a ``DatetimeIndex``, else a column named ``Date``, ``Datetime``,
``timestamp`` or ``time`` (any case; epoch numbers in s, ms, us or ns are
recognised by their size), else an unnamed first column. Anything else is a
``DataError`` that says what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from trademk.domain.ports import TickStore
from trademk.strategies.bars import Bars

__all__ = ["OHLCV_COLUMNS", "DataError", "bars_from_frame", "load_from_tick_store", "load_ohlcv"]

OHLCV_COLUMNS: Final = ("Open", "High", "Low", "Close", "Volume")
_TIME_NAMES: Final = ("date", "datetime", "timestamp", "time")
_EPOCH_UNITS: Final = (("s", 1e11), ("ms", 1e14), ("us", 1e17), ("ns", float("inf")))


class DataError(ValueError):
    """Backtest data that cannot be used as it is."""


def load_ohlcv(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Normalised OHLCV (see the module docstring) from a file path or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        return normalise_ohlcv(source)
    path = Path(source)
    if not path.is_file():
        raise DataError(f"no such data file: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            frame = pd.read_csv(path)
        else:
            raise DataError(f"unsupported data file {path.name!r}: use .csv or .parquet")
    except (OSError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"cannot read {path}: {err}") from err
    return normalise_ohlcv(frame, origin=str(path))


def _time_index(frame: pd.DataFrame, origin: str) -> tuple[pd.DatetimeIndex, pd.DataFrame]:
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame.index, frame
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    column = next((by_lower[n] for n in _TIME_NAMES if n in by_lower), None)
    if column is None and len(frame.columns) and str(frame.columns[0]).startswith("Unnamed"):
        column = frame.columns[0]
    if column is None:
        raise DataError(
            f"{origin}: no time column: name one Date, Datetime or timestamp "
            f"(columns are {[str(c) for c in frame.columns]})"
        )
    return _parse_times(frame[column], str(column), origin), frame.drop(columns=[column])


def _parse_times(values: pd.Series, name: str, origin: str) -> pd.DatetimeIndex:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        magnitude = (
            float(np.nanmax(np.abs(values.to_numpy(dtype=np.float64)))) if len(values) else 0
        )
        unit = next(u for u, limit in _EPOCH_UNITS if magnitude < limit)
        return pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True))
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, utc=False, format="mixed"))
    except (ValueError, TypeError) as err:
        raise DataError(f"{origin}: cannot read column {name!r} as times: {err}") from None


def _ohlcv_columns(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in OHLCV_COLUMNS[:4] if c.lower() not in by_lower]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {missing} (columns are {[str(c) for c in frame.columns]})"
        )
    result = pd.DataFrame(index=frame.index)
    for name in OHLCV_COLUMNS:
        source = by_lower.get(name.lower())
        if source is None:
            result[name] = np.nan
            continue
        try:
            numbers = pd.to_numeric(frame[source], errors="raise")
            result[name] = numbers.astype(np.float64, copy=False)
        except (ValueError, TypeError) as err:
            raise DataError(f"{origin}: column {str(source)!r} is not numeric: {err}") from None
    return result


def normalise_ohlcv(frame: pd.DataFrame, origin: str = "data") -> pd.DataFrame:
    """Normalise an OHLCV DataFrame (see the module docstring)."""
    if len(frame) == 0:
        raise DataError(f"{origin}: no rows")
    index, rest = _time_index(frame, origin)
    columns = _ohlcv_columns(rest, origin)
    columns.index = index.tz_convert("UTC") if index.tz is not None else index
    columns.index.name = None
    if columns.index.hasnans:
        raise DataError(f"{origin}: {int(columns.index.isna().sum())} row(s) have no time")
    if not columns.index.is_monotonic_increasing:
        columns = columns.sort_index(kind="stable")
    duplicated = columns.index.duplicated()
    if duplicated.any():
        first = columns.index[duplicated][0]
        raise DataError(f"{origin}: {int(duplicated.sum())} duplicate time(s), first {first}")
    # Column by column: the four price columns never get copied into one 2-D array.
    prices = [columns[name].to_numpy() for name in OHLCV_COLUMNS[:4]]
    missing = np.isnan(prices[0])
    for values in prices[1:]:
        missing |= np.isnan(values)
    if missing.any():
        raise DataError(
            f"{origin}: {int(missing.sum())} row(s) have a missing price, first at "
            f"{columns.index[missing][0]}; drop or fill them first"
        )
    if any((values <= 0).any() for values in prices):
        raise DataError(f"{origin}: prices must be positive")
    return columns


def _index_ns(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    naive = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
    values: npt.NDArray[np.int64] = np.asarray(naive.as_unit("ns").asi8, dtype=np.int64)
    return values


def bars_from_frame(frame: pd.DataFrame, symbol: str = "ASSET", interval: str = "") -> Bars:
    """``Bars`` (UTC ns open times, float columns) from a normalised OHLCV frame."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError("backtest data needs a DatetimeIndex; load it with load_ohlcv()")
    return Bars.from_arrays(
        _index_ns(index),
        frame["Open"].to_numpy(),
        frame["High"].to_numpy(),
        frame["Low"].to_numpy(),
        frame["Close"].to_numpy(),
        frame["Volume"].to_numpy(),
        symbol=symbol,
        interval=interval,
    )


async def load_from_tick_store(
    store: TickStore,
    symbol: str,
    interval: str,
    start_ns: int,
    end_ns: int,
    *,
    exchange: str | None = None,
    limit: int = 10_000_000,
) -> pd.DataFrame:
    """OHLCV bars aggregated by the tick store over ``[start_ns, end_ns)``, indexed in UTC."""
    bars = await store.bars(symbol, interval, start_ns, end_ns, limit=limit, exchange=exchange)
    if not bars:
        raise DataError(f"the tick store has no {interval} bars of {symbol} in that range")
    index = pd.to_datetime([b.ts for b in bars], unit="ns", utc=True)
    frame = pd.DataFrame(
        {
            "Open": [b.open for b in bars],
            "High": [b.high for b in bars],
            "Low": [b.low for b in bars],
            "Close": [b.close for b in bars],
            "Volume": [b.volume for b in bars],
        },
        index=index,
    )
    return normalise_ohlcv(frame, origin=f"tick store {symbol} {interval}")
