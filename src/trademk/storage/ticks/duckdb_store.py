"""Embedded DuckDB tick store (the single-process default).

DuckDB is synchronous, so every call runs on one dedicated worker thread and the
event loop never blocks on it; the single thread also serialises access to the one
connection. Writes go in as one Arrow table per batch (``INSERT ... SELECT``), in the
same transaction as the batch-id record.
"""

# ruff: noqa: S608 - SQL text only interpolates identifiers checked by check_table_name
# and validated integers; every value from a caller is a bound parameter.

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from pathlib import Path
from typing import Any, Final, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trademk.domain.market import Bar, Tick
from trademk.storage.ticks.common import (
    DEFAULT_TABLE,
    MIXED_EXCHANGES,
    ORD_BITS,
    ORD_BLOCK_ROWS,
    STORED_COLUMNS,
    TICK_SELECT_LIST,
    bar_from_row,
    check_batch,
    check_range_query,
    check_symbol,
    check_table_name,
    checked_interval_nanos,
    ord_blocks_needed,
    tick_from_row,
)
from trademk.storage.ticks.errors import TickStoreNotStartedError, TickStoreUnavailableError

_T = TypeVar("_T")

MEMORY: Final = ":memory:"

_ARROW_FIELDS: Final = (
    ("symbol", pa.string()),
    ("exchange", pa.string()),
    ("kind", pa.string()),
    ("ts", pa.int64()),
    ("price", pa.float64()),
    ("qty", pa.float64()),
    ("bid", pa.float64()),
    ("bid_size", pa.float64()),
    ("ask", pa.float64()),
    ("ask_size", pa.float64()),
    ("seq", pa.int64()),
    ("received", pa.int64()),
)
_TICK_SCHEMA: Final = pa.schema(list(_ARROW_FIELDS))
_GETTERS: Final = tuple((attrgetter(name), arrow_type) for name, arrow_type in _ARROW_FIELDS)


def ticks_to_arrow(batch: Sequence[Tick]) -> pa.Table:
    """The batch as an Arrow table in :data:`TICK_COLUMNS` order."""
    arrays = [pa.array(list(map(get, batch)), type=arrow_type) for get, arrow_type in _GETTERS]
    return pa.Table.from_arrays(arrays, schema=_TICK_SCHEMA)


def with_ord_column(table: pa.Table, ord_blocks: Sequence[int]) -> pa.Table:
    """``table`` plus the ``ord`` (insertion order) column drawn from ``ord_blocks``."""
    rows = table.num_rows
    ords = np.empty(rows, dtype=np.int64)
    for index, block in enumerate(ord_blocks):
        first = index * ORD_BLOCK_ROWS
        last = min(first + ORD_BLOCK_ROWS, rows)
        ords[first:last] = np.arange(last - first, dtype=np.int64) + (block << ORD_BITS)
    return table.append_column("ord", pa.array(ords))


class DuckDBTickStore:
    """TickStore on an embedded DuckDB file (or ``:memory:``).

    DuckDB admits one writing process per file. ``checkpoint_threshold`` is DuckDB's
    WAL size that triggers a checkpoint; a larger one than DuckDB's 16 MB default
    keeps sustained bulk inserts fast.
    """

    backend: Final = "duckdb"

    def __init__(
        self,
        path: str | Path = MEMORY,
        *,
        table: str = DEFAULT_TABLE,
        checkpoint_threshold: str = "256MB",
    ) -> None:
        self._path = str(path)
        self._table = check_table_name(table)
        self._batches = f"{table}_batches"
        self._sequence = f"{table}_ord_seq"
        self._checkpoint_threshold = checkpoint_threshold
        self._executor: ThreadPoolExecutor | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def path(self) -> str:
        """The database file (or ``:memory:``)."""
        return self._path

    async def start(self) -> None:
        """Open the database on the worker thread and create the tables if missing."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-ticks")
        try:
            await self._run(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        """Close the connection (checkpointing the WAL) and stop the worker thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_connection)
        finally:
            executor.shutdown(wait=False)

    async def write(self, batch: Sequence[Tick], batch_id: str | None = None) -> int:
        """Insert the batch atomically; an already recorded ``batch_id`` writes nothing."""
        check_batch(batch, batch_id)
        if not batch:
            return 0
        return await self._run(self._write_sync, batch, batch_id)

    async def ticks(
        self,
        symbol: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        exchange: str | None = None,
    ) -> list[Tick]:
        """Ticks with ``start <= ts < end``, newest first, at most ``limit``."""
        check_range_query(symbol, start, end, limit)
        where, params = _filters(symbol, start, end, exchange)
        sql = (
            f"SELECT {TICK_SELECT_LIST} FROM {self._table} WHERE {where} "
            "ORDER BY ts DESC, seq DESC NULLS FIRST, ord DESC LIMIT ?"
        )
        rows = await self._run(self._fetchall, sql, [*params, limit])
        return [tick_from_row(row) for row in rows]

    async def latest(self, symbol: str, exchange: str | None = None) -> Tick | None:
        """The newest tick of ``symbol`` (trade or quote), or None."""
        check_symbol(symbol)
        where, params = _filters(symbol, None, None, exchange)
        sql = (
            f"SELECT {TICK_SELECT_LIST} FROM {self._table} WHERE {where} "
            "ORDER BY ts DESC, seq DESC NULLS FIRST, ord DESC LIMIT 1"
        )
        rows = await self._run(self._fetchall, sql, params)
        return tick_from_row(rows[0]) if rows else None

    async def bars(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        exchange: str | None = None,
    ) -> list[Bar]:
        """OHLCV bars of trades, aligned to UTC epoch multiples, oldest first."""
        check_range_query(symbol, start, end, limit)
        width = checked_interval_nanos(interval)
        where, params = _filters(symbol, start, end, exchange)
        sql = f"""
            WITH trades AS (
                SELECT ts - (((ts % ?) + ?) % ?) AS bucket, exchange, ts, seq, ord, price, qty
                FROM {self._table} WHERE {where} AND kind = 'trade'
            )
            SELECT bucket,
                CASE WHEN min(exchange) = max(exchange) THEN min(exchange)
                     ELSE '{MIXED_EXCHANGES}' END,
                first(price ORDER BY ts, seq NULLS LAST, ord),
                max(price), min(price),
                last(price ORDER BY ts, seq NULLS LAST, ord),
                sum(qty),
                CASE WHEN sum(qty) = 0 THEN avg(price) ELSE sum(price * qty) / sum(qty) END,
                count(*)
            FROM trades GROUP BY bucket ORDER BY bucket DESC LIMIT ?
        """
        rows = await self._run(self._fetchall, sql, [width, width, width, *params, limit])
        return [bar_from_row(symbol, interval, row) for row in reversed(rows)]

    async def health(self) -> dict[str, Any]:
        """Count the rows with a real query; raises when the store is not open."""
        rows = await self._run(self._fetchall, f"SELECT count(*) FROM {self._table}", [])
        return {
            "backend": self.backend,
            "path": self._path,
            "table": self._table,
            "rows": int(rows[0][0]),
        }

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            raise TickStoreNotStartedError("DuckDBTickStore is not started: call start() first")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise TickStoreNotStartedError("DuckDBTickStore is closed")
        return self._con

    def _open(self) -> None:
        if self._path != MEMORY:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(self._path)
        except duckdb.IOException as err:
            if "lock" not in str(err).lower():
                raise
            raise TickStoreUnavailableError(
                f"the DuckDB tick store {self._path} is open in another process "
                "(DuckDB admits one writing process per file): stop that process, "
                "use another DATA_DIR, or use a PostgreSQL/QuestDB TICKSTORE_URL"
            ) from None
        try:
            con.execute(f"SET checkpoint_threshold = '{self._checkpoint_threshold}'")
            con.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._table} (
                    symbol VARCHAR NOT NULL, exchange VARCHAR NOT NULL, kind VARCHAR NOT NULL,
                    ts BIGINT NOT NULL, price DOUBLE NOT NULL, qty DOUBLE NOT NULL,
                    bid DOUBLE, bid_size DOUBLE, ask DOUBLE, ask_size DOUBLE,
                    seq BIGINT, received BIGINT NOT NULL, ord BIGINT NOT NULL)"""
            )
            con.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._batches} (
                    batch_id VARCHAR PRIMARY KEY,
                    tick_count BIGINT NOT NULL,
                    newest_ts BIGINT NOT NULL)"""
            )
            con.execute(f"CREATE SEQUENCE IF NOT EXISTS {self._sequence}")
        except BaseException:
            con.close()
            raise
        self._con = con

    def _close_connection(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()

    def _fetchall(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return self._connection().execute(sql, params).fetchall()

    def _write_sync(self, batch: Sequence[Tick], batch_id: str | None) -> int:
        incoming = ticks_to_arrow(batch)
        con = self._connection()
        con.begin()
        try:
            written = self._write_in_transaction(con, incoming, batch_id)
            con.commit()
        except BaseException:
            _rollback_quietly(con)
            raise
        return written

    def _write_in_transaction(
        self, con: duckdb.DuckDBPyConnection, incoming: pa.Table, batch_id: str | None
    ) -> int:
        if batch_id is not None:
            seen = con.execute(
                f"SELECT 1 FROM {self._batches} WHERE batch_id = ?", [batch_id]
            ).fetchone()
            if seen is not None:
                return 0
            con.execute(
                f"INSERT INTO {self._batches} VALUES (?, ?, ?)",
                [batch_id, incoming.num_rows, pc.max(incoming["ts"]).as_py()],
            )
        blocks = con.execute(
            f"SELECT nextval('{self._sequence}') FROM range(?)",
            [ord_blocks_needed(incoming.num_rows)],
        ).fetchall()
        view = f"{self._table}_incoming"
        con.register(view, with_ord_column(incoming, [block for (block,) in blocks]))
        try:
            con.execute(f"INSERT INTO {self._table} SELECT {', '.join(STORED_COLUMNS)} FROM {view}")
        finally:
            con.unregister(view)
        return int(incoming.num_rows)


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    # A failed COMMIT has already rolled back; a second rollback then reports
    # "no transaction is active", which must not hide the original error.
    with contextlib.suppress(duckdb.Error):
        con.rollback()


def _filters(
    symbol: str, start: int | None, end: int | None, exchange: str | None
) -> tuple[str, list[Any]]:
    clauses = ["symbol = ?"]
    params: list[Any] = [symbol]
    if exchange is not None:
        clauses.append("exchange = ?")
        params.append(exchange)
    if start is not None:
        clauses.append("ts >= ?")
        params.append(start)
    if end is not None:
        clauses.append("ts < ?")
        params.append(end)
    return " AND ".join(clauses), params
