"""Pieces every TickStore backend shares: column layout, argument checks, row mapping.

Ordering rule used by every backend (and by the contract suite): ticks are ordered by
``ts``, then by ``seq`` with missing sequence numbers after present ones, then by
insertion order. ``ticks()`` and ``latest()`` use the reverse of that order; a bar's
``open`` is the first trade in that order and its ``close`` the last.

Insertion order is kept in a stored ``ord`` column: each write takes one number per
block of :data:`ORD_BLOCK_ROWS` rows from a database sequence, and row ``i`` of the
block gets ``block << ORD_BITS | i``. One sequence call per write keeps COPY and Arrow
inserts fast while staying monotonic across writers sharing a database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any, Final

from trademk.domain.market import Bar, Tick, TickKind, interval_nanos

TICK_COLUMNS: Final = (
    "symbol",
    "exchange",
    "kind",
    "ts",
    "price",
    "qty",
    "bid",
    "bid_size",
    "ask",
    "ask_size",
    "seq",
    "received",
)
STORED_COLUMNS: Final = (*TICK_COLUMNS, "ord")
TICK_SELECT_LIST: Final = ", ".join(TICK_COLUMNS)

ORD_BITS: Final = 24
ORD_BLOCK_ROWS: Final = 1 << ORD_BITS
ORD_ROW_MASK: Final = ORD_BLOCK_ROWS - 1

DEFAULT_TABLE: Final = "market_ticks"
MIXED_EXCHANGES: Final = "*"
"""``Bar.exchange`` of a bar aggregated over trades from more than one exchange."""

_TS: Final = attrgetter("ts")
_TABLE_NAME_RE: Final = re.compile(r"^[a-z_][a-z0-9_]{0,46}$")


def check_table_name(name: str) -> str:
    """Return ``name`` if it is a safe lower-case SQL identifier, else raise ValueError."""
    if not isinstance(name, str) or _TABLE_NAME_RE.fullmatch(name) is None:
        raise ValueError(
            f"invalid table name {name!r}: use 1-47 characters of a-z, 0-9 and _, "
            "not starting with a digit"
        )
    return name


def check_batch(batch: Sequence[Tick], batch_id: str | None) -> None:
    """Raise a clear error for a batch that is not a sequence of Ticks or a bad batch id."""
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence):
        raise TypeError(f"batch must be a sequence of Tick, not {type(batch).__name__}")
    for tick in batch:
        if not isinstance(tick, Tick):
            raise TypeError(f"batch must contain only Tick objects, found {type(tick).__name__}")
    if batch_id is not None and (not isinstance(batch_id, str) or not batch_id):
        raise ValueError("batch_id must be a non-empty string or None")


def _check_optional_ns(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{name} must be integer nanoseconds or None, not {value!r}")


def check_range_query(symbol: str, start: int | None, end: int | None, limit: int) -> None:
    """Validate the arguments shared by ``ticks()`` and ``bars()``."""
    check_symbol(symbol)
    _check_optional_ns("start", start)
    _check_optional_ns("end", end)
    if start is not None and end is not None and start > end:
        raise ValueError(f"start ({start}) is after end ({end})")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"limit must be a positive integer, not {limit!r}")


def check_symbol(symbol: str) -> None:
    """Raise ValueError unless ``symbol`` is a non-empty string."""
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"symbol must be a non-empty string, not {symbol!r}")


def checked_interval_nanos(interval: str) -> int:
    """``interval_nanos`` with a clear error for a non-string interval."""
    if not isinstance(interval, str):
        raise ValueError(f"interval must be a string such as '1m', not {interval!r}")
    return interval_nanos(interval)


def newest_ts(batch: Sequence[Tick]) -> int:
    """The largest ``ts`` of a non-empty batch."""
    return int(max(map(_TS, batch)))


def ord_blocks_needed(rows: int) -> int:
    """How many ``ord`` sequence numbers a write of ``rows`` rows takes."""
    return (rows + ORD_BLOCK_ROWS - 1) // ORD_BLOCK_ROWS


def ord_values(blocks: Sequence[int], rows: int) -> Iterator[int]:
    """The ``ord`` value of each of ``rows`` rows, given the blocks drawn for the write."""
    for index, block in enumerate(blocks):
        base = block << ORD_BITS
        first = index * ORD_BLOCK_ROWS
        yield from range(base, base + min(ORD_BLOCK_ROWS, rows - first))


def tick_from_row(row: Sequence[Any]) -> Tick:
    """A Tick from a row in :data:`TICK_COLUMNS` order."""
    return Tick(
        symbol=row[0],
        exchange=row[1],
        kind=TickKind(row[2]),
        ts=int(row[3]),
        price=row[4],
        qty=row[5],
        bid=row[6],
        bid_size=row[7],
        ask=row[8],
        ask_size=row[9],
        seq=row[10],
        received=int(row[11]),
    )


def bar_from_row(symbol: str, interval: str, row: Sequence[Any]) -> Bar:
    """A Bar from ``(bucket, exchange, open, high, low, close, volume, vwap, trades)``."""
    return Bar(
        symbol=symbol,
        exchange=row[1],
        interval=interval,
        ts=int(row[0]),
        open=float(row[2]),
        high=float(row[3]),
        low=float(row[4]),
        close=float(row[5]),
        volume=float(row[6]),
        vwap=float(row[7]),
        trades=int(row[8]),
    )
