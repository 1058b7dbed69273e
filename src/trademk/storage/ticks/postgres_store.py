"""PostgreSQL tick store: asyncpg pool, COPY writes, idempotent batch ids.

``symbol`` and ``exchange`` use the "C" collation so index comparisons are byte
compares whatever the database's locale.

Layout (measured with ``benchmarks/tickstore_write.py``): one plain heap table with
a B-tree on ``(symbol, ts)``, which serves ``ticks()``, ``latest()`` and ``bars()``
(all filter one symbol and a time range), and a BRIN index on ``ts`` for cheap
time-range maintenance such as retention. BRIN costs a few percent of COPY
throughput; the B-tree is the main cost and is what makes the reads fast.

A batch is one transaction: the batch id goes into ``<table>_batches`` (primary key,
``ON CONFLICT DO NOTHING``), then the rows go in with binary COPY. A concurrent
writer of the same id blocks on the key until the first commits, then sees it.
"""

# ruff: noqa: S608 - SQL text only interpolates identifiers checked by check_table_name
# and validated integers; every value from a caller is a bound parameter.

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Final

import asyncpg

from trademk.domain.market import Bar, Tick
from trademk.storage.ticks.common import (
    DEFAULT_TABLE,
    MIXED_EXCHANGES,
    STORED_COLUMNS,
    TICK_SELECT_LIST,
    bar_from_row,
    check_batch,
    check_range_query,
    check_symbol,
    check_table_name,
    checked_interval_nanos,
    newest_ts,
    ord_blocks_needed,
    ord_values,
    tick_from_row,
)
from trademk.storage.ticks.errors import TickStoreUnavailableError
from trademk.storage.ticks.pgwire import CONNECTIVITY_ERRORS, pooled_connection


def tick_records(batch: Sequence[Tick], ord_blocks: Sequence[int]) -> Iterator[tuple[Any, ...]]:
    """COPY records in :data:`STORED_COLUMNS` order."""
    for tick, ord_value in zip(batch, ord_values(ord_blocks, len(batch)), strict=True):
        yield (
            tick.symbol,
            tick.exchange,
            str(tick.kind),
            tick.ts,
            tick.price,
            tick.qty,
            tick.bid,
            tick.bid_size,
            tick.ask,
            tick.ask_size,
            tick.seq,
            tick.received,
            ord_value,
        )


class PostgresTickStore:
    """TickStore on PostgreSQL (shared by several processes).

    ``dsn`` is a ``postgresql://`` URL. ``connect_timeout`` bounds connecting (and
    waiting for a pooled connection); ``command_timeout`` bounds each statement,
    COPY included. A write whose connection fails raises
    :class:`TickStoreUnavailableError`; the pool then drops its connections and
    reconnects on the next call, so the store recovers when the server returns.
    """

    backend: Final = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        table: str = DEFAULT_TABLE,
        min_pool_size: int = 1,
        max_pool_size: int = 4,
        connect_timeout: float = 5.0,
        command_timeout: float = 60.0,
    ) -> None:
        if connect_timeout <= 0 or command_timeout <= 0:
            raise ValueError("connect_timeout and command_timeout must be positive")
        self._dsn = dsn
        self._table = check_table_name(table)
        self._batches = f"{table}_batches"
        self._sequence = f"{table}_ord_seq"
        self._min_pool_size = min_pool_size
        self._max_pool_size = max_pool_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None

    @property
    def table(self) -> str:
        """The ticks table name."""
        return self._table

    async def start(self) -> None:
        """Open the pool and create the table, indexes and batch-id table if missing."""
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_pool_size,
                max_size=self._max_pool_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
            )
        except CONNECTIVITY_ERRORS as err:
            raise TickStoreUnavailableError(f"PostgreSQL tick store unreachable: {err}") from err
        self._pool = pool
        try:
            async with self._connection() as conn, conn.transaction():
                # Serialises concurrent starts: CREATE ... IF NOT EXISTS races otherwise.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._table)
                await conn.execute(self._schema_sql())
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the pool (waits for calls in flight)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def write(self, batch: Sequence[Tick], batch_id: str | None = None) -> int:
        """COPY the batch in one transaction; an already recorded ``batch_id`` writes 0."""
        check_batch(batch, batch_id)
        if not batch:
            return 0
        async with self._connection() as conn, conn.transaction():
            if batch_id is not None:
                recorded = await conn.fetchval(
                    f"INSERT INTO {self._batches} (batch_id, tick_count, newest_ts) "
                    "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
                    batch_id,
                    len(batch),
                    newest_ts(batch),
                )
                if recorded is None:
                    return 0
            blocks = await conn.fetch(
                f"SELECT nextval('{self._sequence}') FROM generate_series(1, $1)",
                ord_blocks_needed(len(batch)),
            )
            await conn.copy_records_to_table(
                self._table,
                records=tick_records(batch, [row[0] for row in blocks]),
                columns=list(STORED_COLUMNS),
                timeout=self._command_timeout,
            )
        return len(batch)

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
            f"ORDER BY ts DESC, seq DESC NULLS FIRST, ord DESC LIMIT ${len(params) + 1}"
        )
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params, limit)
        return [tick_from_row(row) for row in rows]

    async def latest(self, symbol: str, exchange: str | None = None) -> Tick | None:
        """The newest tick of ``symbol`` (trade or quote), or None."""
        check_symbol(symbol)
        where, params = _filters(symbol, None, None, exchange)
        sql = (
            f"SELECT {TICK_SELECT_LIST} FROM {self._table} WHERE {where} "
            "ORDER BY ts DESC, seq DESC NULLS FIRST, ord DESC LIMIT 1"
        )
        async with self._connection() as conn:
            row = await conn.fetchrow(sql, *params)
        return None if row is None else tick_from_row(row)

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
        width_arg = f"${len(params) + 1}::bigint"
        sql = f"""
            WITH trades AS (
                SELECT ts - (((ts % {width_arg}) + {width_arg}) % {width_arg}) AS bucket,
                       exchange, ts, seq, ord, price, qty
                FROM {self._table} WHERE {where} AND kind = 'trade'
            )
            SELECT bucket,
                CASE WHEN min(exchange) = max(exchange) THEN min(exchange)
                     ELSE '{MIXED_EXCHANGES}' END,
                (array_agg(price ORDER BY ts, seq NULLS LAST, ord))[1],
                max(price), min(price),
                (array_agg(price ORDER BY ts DESC, seq DESC NULLS FIRST, ord DESC))[1],
                sum(qty),
                CASE WHEN sum(qty) = 0 THEN avg(price) ELSE sum(price * qty) / sum(qty) END,
                count(*)
            FROM trades GROUP BY bucket ORDER BY bucket DESC LIMIT ${len(params) + 2}
        """
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params, width, limit)
        return [bar_from_row(symbol, interval, row) for row in reversed(rows)]

    async def health(self) -> dict[str, Any]:
        """Query the server; raises :class:`TickStoreUnavailableError` when unreachable."""
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT current_setting('server_version') AS version, "
                "GREATEST(c.reltuples, 0)::bigint AS estimate "
                "FROM pg_class c WHERE c.oid = to_regclass($1)",
                self._table,
            )
        if row is None:
            raise TickStoreUnavailableError(f"tick table {self._table!r} does not exist")
        return {
            "backend": self.backend,
            "table": self._table,
            "server_version": row["version"],
            "rows_estimate": int(row["estimate"]),
        }

    def _connection(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        return pooled_connection(
            self._pool, acquire_timeout=self._connect_timeout, server="PostgreSQL"
        )

    def _schema_sql(self) -> str:
        table = self._table
        return f"""
            CREATE TABLE IF NOT EXISTS {table} (
                symbol text COLLATE "C" NOT NULL,
                exchange text COLLATE "C" NOT NULL,
                kind text NOT NULL CHECK (kind IN ('trade', 'quote')),
                ts bigint NOT NULL,
                price double precision NOT NULL,
                qty double precision NOT NULL,
                bid double precision,
                bid_size double precision,
                ask double precision,
                ask_size double precision,
                seq bigint,
                received bigint NOT NULL,
                ord bigint NOT NULL
            );
            CREATE INDEX IF NOT EXISTS {table}_symbol_ts_idx ON {table} (symbol, ts);
            CREATE INDEX IF NOT EXISTS {table}_ts_brin ON {table} USING brin (ts);
            CREATE TABLE IF NOT EXISTS {self._batches} (
                batch_id text PRIMARY KEY,
                tick_count integer NOT NULL,
                newest_ts bigint NOT NULL
            );
            CREATE SEQUENCE IF NOT EXISTS {self._sequence};
        """


def _filters(
    symbol: str, start: int | None, end: int | None, exchange: str | None
) -> tuple[str, list[Any]]:
    clauses = ["symbol = $1"]
    params: list[Any] = [symbol]
    if exchange is not None:
        params.append(exchange)
        clauses.append(f"exchange = ${len(params)}")
    if start is not None:
        params.append(start)
        clauses.append(f"ts >= ${len(params)}::bigint")
    if end is not None:
        params.append(end)
        clauses.append(f"ts < ${len(params)}::bigint")
    return " AND ".join(clauses), params
