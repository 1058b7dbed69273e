"""Reading ticks from CSV and Parquet files for replay.

Columns are :class:`Tick` field names. ``symbol``, ``ts`` and ``price`` are
required; ``exchange`` defaults to a given name, ``kind`` to ``trade``, ``qty``
to 0, ``received`` to 0, and the book and ``seq`` columns to empty.
Timestamps (``ts``, ``received``) are integer nanoseconds since the epoch or
ISO-8601 datetimes (naive ones are UTC). Other columns are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from trademk.domain.market import Tick, TickKind

REQUIRED_COLUMNS: Final = ("symbol", "ts", "price")
_OPTIONAL_FLOATS: Final = ("bid", "bid_size", "ask", "ask_size")
_KINDS: Final = {kind.value for kind in TickKind}


class TickFileError(ValueError):
    """The file cannot be read as ticks; the message says which column and why."""


def read_tick_frame(path: Path) -> pd.DataFrame:
    """The raw table of a ``.csv`` or ``.parquet`` file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise TickFileError(f"{path}: no such file")
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise TickFileError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def load_tick_file(
    path: Path,
    *,
    symbols: Sequence[str] = (),
    start: int | None = None,
    end: int | None = None,
    exchange: str | None = None,
    default_exchange: str = "REPLAY",
) -> list[Tick]:
    """Ticks from ``path`` with ``start <= ts < end``, sorted by ``ts`` (stable)."""
    frame = read_tick_frame(path)
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise TickFileError(f"{path}: missing required column(s) {', '.join(missing)}")
    frame = frame.assign(
        ts=_nanos(frame["ts"], "ts", path),
        exchange=frame["exchange"] if "exchange" in frame.columns else default_exchange,
    )
    mask = pd.Series(True, index=frame.index)
    if symbols:
        mask &= frame["symbol"].isin(list(symbols))
    if exchange is not None:
        mask &= frame["exchange"] == exchange
    if start is not None:
        mask &= frame["ts"] >= start
    if end is not None:
        mask &= frame["ts"] < end
    frame = frame[mask].sort_values("ts", kind="stable")
    return _to_ticks(frame, path)


def _to_ticks(frame: pd.DataFrame, path: Path) -> list[Tick]:
    kinds = _column(frame, "kind", TickKind.TRADE.value)
    bad = sorted({str(k) for k in kinds} - _KINDS)
    if bad:
        raise TickFileError(f"{path}: column kind has unknown value(s) {bad}; use trade or quote")
    received = _optional_nanos(frame, "received", path)
    qty = [0.0 if _missing(q) else float(q) for q in _column(frame, "qty", 0.0)]
    book = {
        name: [_optional_float(v) for v in _column(frame, name, None)] for name in _OPTIONAL_FLOATS
    }
    if frame["symbol"].isna().any():
        raise TickFileError(f"{path}: column symbol has empty values")
    seqs = [None if _missing(s) else int(s) for s in _column(frame, "seq", None)]
    prices = [float(p) for p in frame["price"].tolist()]
    if any(math.isnan(p) for p in prices):
        raise TickFileError(f"{path}: column price has empty values")
    return [
        Tick(
            symbol=str(symbol),
            exchange=str(exch),
            kind=TickKind(str(kind)),
            ts=int(ts),
            price=price,
            qty=q,
            bid=book["bid"][i],
            bid_size=book["bid_size"][i],
            ask=book["ask"][i],
            ask_size=book["ask_size"][i],
            seq=seqs[i],
            received=int(recv),
        )
        for i, (symbol, exch, kind, ts, price, q, recv) in enumerate(
            zip(
                frame["symbol"].tolist(),
                frame["exchange"].tolist(),
                kinds,
                frame["ts"].tolist(),
                prices,
                qty,
                received,
                strict=True,
            )
        )
    ]


def _column(frame: pd.DataFrame, name: str, default: Any) -> list[Any]:
    if name in frame.columns:
        return list(frame[name].tolist())
    return [default] * len(frame)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _optional_float(value: Any) -> float | None:
    return None if _missing(value) else float(value)


def _optional_nanos(frame: pd.DataFrame, name: str, path: Path) -> list[int]:
    """Like ``_nanos`` for an optional column whose empty cells mean 0."""
    if name not in frame.columns:
        return [0] * len(frame)
    column = frame[name]
    present = column.notna()
    values = pd.Series(0, index=frame.index, dtype="int64")
    if present.any():
        values[present] = _nanos(column[present], name, path)
    return [int(v) for v in values.tolist()]


def _nanos(column: pd.Series, name: str, path: Path) -> pd.Series:
    """Integer ns from an integer, float-integral, datetime or ISO-string column."""
    if column.isna().any():
        raise TickFileError(f"{path}: column {name} has empty values")
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.astype("int64")
    if pd.api.types.is_float_dtype(column.dtype):
        if not (column == column.round()).all():
            raise TickFileError(f"{path}: column {name} must hold integer nanoseconds")
        return column.astype("int64")
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
        column.dtype
    ):
        return _datetimes_to_ns(column)
    text = column.astype(str).str.strip()
    if text.str.fullmatch(r"-?\d+").all():
        return text.astype("int64")
    try:
        parsed = pd.to_datetime(text, utc=True, format="ISO8601")
    except (ValueError, TypeError) as err:
        raise TickFileError(
            f"{path}: column {name} must be integer ns or ISO-8601 datetimes ({err})"
        ) from err
    return _datetimes_to_ns(parsed)


def _datetimes_to_ns(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    return column.dt.as_unit("ns").astype("int64")
