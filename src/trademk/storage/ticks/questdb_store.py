"""QuestDB tick store: ILP over HTTP for writes, PostgreSQL wire protocol for reads.

Needs QuestDB 9.1 or later (``TIMESTAMP_NS`` designated timestamp, ILP protocol
version 2). The table is a WAL table partitioned by day with
``DEDUP UPSERT KEYS(ts, symbol, exchange, kind, seq)``, so a batch sent twice (a
retry whose outcome was unknown) keeps one copy of each row.

QuestDB has no transaction spanning two tables, so the batch id is recorded in
``<table>_batches`` right after the ticks are committed; a retry that finds the id
returns 0, and a retry that does not (the process died in between) re-sends rows
that deduplication folds into the ones already stored.

WAL tables apply commits asynchronously. ``write()`` returns once QuestDB has
applied them (``wal_tables()``), so a read after a write sees the write.

CI has no QuestDB server: the contract suite runs this backend only when
``QUESTDB_URL`` is set.
"""

# ruff: noqa: S608 - SQL text only interpolates identifiers checked by check_table_name
# and validated integers; every value from a caller is a bound parameter.

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from typing import Any, Final, TypeVar

import asyncpg
import numpy as np
import pandas as pd

try:
    import questdb
except ImportError:  # the optional "questdb" extra is not installed
    questdb = None  # type: ignore[assignment]

from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick
from trademk.storage.ticks.common import (
    DEFAULT_TABLE,
    MIXED_EXCHANGES,
    bar_from_row,
    check_batch,
    check_range_query,
    check_symbol,
    check_table_name,
    checked_interval_nanos,
    newest_ts,
    tick_from_row,
)
from trademk.storage.ticks.errors import (
    TickStoreError,
    TickStoreNotStartedError,
    TickStoreUnavailableError,
)
from trademk.storage.ticks.pgwire import CONNECTIVITY_ERRORS, pooled_connection

_T = TypeVar("_T")

_DAY_NS: Final = 86_400 * NANOS_PER_SECOND
_NULL_SEQ_KEY: Final = 9_223_372_036_854_775_807
_SYMBOL_COLUMNS: Final = ["symbol", "exchange", "kind"]
_UNREACHABLE_CODES: Final = (
    frozenset(
        {
            questdb.QuestDBErrorCode.SocketError,
            questdb.QuestDBErrorCode.CouldNotResolveAddr,
            questdb.QuestDBErrorCode.ConnectTimeout,
        }
    )
    if questdb is not None
    else frozenset()
)
MISSING_CLIENT: Final = (
    "the QuestDB tick store needs the official questdb client: pip install 'trademk[questdb]'"
)
# Columns 0-11 are TICK_COLUMNS; the trailing two exist only for ORDER BY.
_SELECT_LIST: Final = (
    "symbol, exchange, kind, ts::long AS ts_ns, price, qty, bid, bid_size, ask, ask_size, "
    f"seq, received, ts, coalesce(seq, {_NULL_SEQ_KEY}) AS seq_key"
)
_RECENT_BATCH_IDS: Final = 10_000


class QuestDBConnection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg connection for QuestDB's PostgreSQL wire endpoint.

    The pool's release-time reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL)
    is PostgreSQL session cleanup; this store never creates such state, and QuestDB
    need not understand those statements, so nothing is sent.
    """

    def get_reset_query(self) -> str:
        return ""


def ticks_to_frame(batch: Sequence[Tick]) -> pd.DataFrame:
    """The batch as a DataFrame shaped for ``Sender.dataframe`` (NaN/NA mean NULL)."""
    rows = len(batch)

    def floats(name: str) -> pd.Series:
        return pd.Series(list(map(attrgetter(name), batch)), dtype="float64")

    ts = np.fromiter(map(attrgetter("ts"), batch), dtype=np.int64, count=rows)
    return pd.DataFrame(
        {
            "symbol": list(map(attrgetter("symbol"), batch)),
            "exchange": list(map(attrgetter("exchange"), batch)),
            "kind": [str(tick.kind) for tick in batch],
            "price": floats("price"),
            "qty": floats("qty"),
            "bid": floats("bid"),
            "bid_size": floats("bid_size"),
            "ask": floats("ask"),
            "ask_size": floats("ask_size"),
            "seq": pd.array(list(map(attrgetter("seq"), batch)), dtype="Int64"),
            "received": np.fromiter(map(attrgetter("received"), batch), np.int64, count=rows),
            "ts": pd.to_datetime(ts, unit="ns", utc=True),
        }
    )


class QuestDBTickStore:
    """TickStore on QuestDB.

    ``host``/``http_port`` is the ILP-over-HTTP endpoint (writes); ``pg_port``,
    ``user``, ``password`` and ``database`` reach the PostgreSQL wire endpoint (reads).
    ``visibility_timeout`` bounds how long a write waits for QuestDB to apply it.
    """

    backend: Final = "questdb"

    def __init__(
        self,
        host: str = "127.0.0.1",
        http_port: int = 9000,
        *,
        pg_port: int = 8812,
        user: str = "admin",
        password: str = "quest",  # noqa: S107 - QuestDB's documented default
        database: str = "qdb",
        table: str = DEFAULT_TABLE,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        visibility_timeout: float = 10.0,
        max_pool_size: int = 4,
    ) -> None:
        if questdb is None:
            raise RuntimeError(MISSING_CLIENT)
        self._host = host
        self._http_port = http_port
        self._pg = {
            "host": host,
            "port": pg_port,
            "user": user,
            "password": password,
            "database": database,
        }
        self._table = check_table_name(table)
        self._batches = f"{table}_batches"
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._visibility_timeout = visibility_timeout
        self._max_pool_size = max_pool_size
        self._pool: asyncpg.Pool | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._sender: questdb.Sender | None = None
        self._recent_batch_ids: OrderedDict[str, None] = OrderedDict()

    def sender_conf(self) -> str:
        """The ILP/HTTP configuration string used for the sender."""
        timeout_ms = int(self._command_timeout * 1000)
        return (
            f"http::addr={self._host}:{self._http_port};auto_flush=off;protocol_version=2;"
            f"retry_timeout={int(self._connect_timeout * 1000)};request_timeout={timeout_ms};"
        )

    async def start(self) -> None:
        """Connect both endpoints and create the tables if missing."""
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                **self._pg,
                min_size=1,
                max_size=self._max_pool_size,
                connection_class=QuestDBConnection,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
            )
        except CONNECTIVITY_ERRORS as err:
            raise TickStoreUnavailableError(f"QuestDB unreachable: {err}") from err
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="questdb-ilp")
        try:
            async with self._connection() as conn:
                for statement in self._schema_sql():
                    await conn.execute(statement)
            await self._run(self._open_sender)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the ILP sender and the read pool."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_sender)
            executor.shutdown(wait=False)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def write(self, batch: Sequence[Tick], batch_id: str | None = None) -> int:
        """Send the batch over ILP/HTTP and wait until QuestDB has applied it."""
        check_batch(batch, batch_id)
        if not batch:
            return 0
        if batch_id is not None and await self._batch_recorded(batch_id):
            return 0
        await self._run(self._send, batch, batch_id)
        await self._wait_applied()
        if batch_id is not None:
            self._remember(batch_id)
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
            f"SELECT {_SELECT_LIST} FROM {self._table} WHERE {where} "
            f"ORDER BY ts DESC, seq_key DESC LIMIT {int(limit)}"
        )
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [tick_from_row(row) for row in rows]

    async def latest(self, symbol: str, exchange: str | None = None) -> Tick | None:
        """The newest tick of ``symbol`` (``LATEST ON ts PARTITION BY symbol``)."""
        check_symbol(symbol)
        where, params = _filters(symbol, None, None, exchange)
        sql = (
            f"SELECT {_SELECT_LIST} FROM ("
            f"SELECT * FROM {self._table} WHERE {where} LATEST ON ts PARTITION BY symbol)"
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
        """Trade bars with ``SAMPLE BY ... ALIGN TO CALENDAR`` (UTC), oldest first."""
        check_range_query(symbol, start, end, limit)
        width = checked_interval_nanos(interval)
        if _DAY_NS % width != 0:
            # Calendar alignment starts buckets at UTC midnight; only widths that
            # divide a day are then also multiples of the interval since the epoch.
            raise ValueError(f"interval {interval!r} must divide one day for QuestDB bars")
        where, params = _filters(symbol, start, end, exchange)
        sql = f"""
            SELECT ts::long AS bucket, exchanges, first_exchange, open, high, low, close,
                   volume, notional, mean_price, trades
            FROM (
                SELECT ts, count_distinct(exchange) AS exchanges,
                       first(exchange) AS first_exchange, first(price) AS open,
                       max(price) AS high, min(price) AS low, last(price) AS close,
                       sum(qty) AS volume, sum(notional) AS notional,
                       avg(price) AS mean_price, count() AS trades
                FROM (
                    SELECT ts, exchange, price, qty, price * qty AS notional,
                           coalesce(seq, {_NULL_SEQ_KEY}) AS seq_key
                    FROM {self._table} WHERE {where} AND kind = 'trade'
                    ORDER BY ts, seq_key, exchange
                ) timestamp(ts)
                SAMPLE BY {interval} ALIGN TO CALENDAR
            )
            ORDER BY bucket DESC LIMIT {int(limit)}
        """
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [bar_from_row(symbol, interval, _bar_row(row)) for row in reversed(rows)]

    async def health(self) -> dict[str, Any]:
        """Row count and WAL state; raises :class:`TickStoreUnavailableError` if unreachable."""
        async with self._connection() as conn:
            rows = await conn.fetchval(f"SELECT count() FROM {self._table}")
            wal = await conn.fetchrow(
                "SELECT suspended, writerTxn, sequencerTxn FROM wal_tables() WHERE name = $1",
                self._table,
            )
        return {
            "backend": self.backend,
            "table": self._table,
            "rows": int(rows),
            "wal_suspended": None if wal is None else bool(wal[0]),
            "wal_pending_txns": None if wal is None else int(wal[2]) - int(wal[1]),
        }

    async def _batch_recorded(self, batch_id: str) -> bool:
        if batch_id in self._recent_batch_ids:
            return True
        async with self._connection() as conn:
            found = await conn.fetchval(
                f"SELECT count() FROM {self._batches} WHERE batch_id = $1", batch_id
            )
        return bool(found)

    def _remember(self, batch_id: str) -> None:
        self._recent_batch_ids[batch_id] = None
        while len(self._recent_batch_ids) > _RECENT_BATCH_IDS:
            self._recent_batch_ids.popitem(last=False)

    async def _wait_applied(self) -> None:
        """Wait until the WAL apply job has caught up with every commit made so far."""
        names = (self._table, self._batches)
        targets: dict[str, int] | None = None
        delay = 0.005
        try:
            async with asyncio.timeout(self._visibility_timeout):
                while True:
                    async with self._connection() as conn:
                        rows = await conn.fetch(
                            "SELECT name, suspended, writerTxn, sequencerTxn FROM wal_tables()"
                        )
                    state = {row[0]: row for row in rows if row[0] in names}
                    for name, row in state.items():
                        if row[1]:
                            raise TickStoreError(
                                f"QuestDB table {name} is suspended: fix the cause and run "
                                f"ALTER TABLE {name} RESUME WAL"
                            )
                    if targets is None:
                        targets = {name: int(row[3]) for name, row in state.items()}
                    if all(int(state[name][2]) >= txn for name, txn in targets.items()):
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.1)
        except TimeoutError as err:
            raise TickStoreUnavailableError(
                f"QuestDB did not apply the write within {self._visibility_timeout}s"
            ) from err

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            raise TickStoreNotStartedError("QuestDBTickStore is not started: call start() first")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _connection(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        return pooled_connection(
            self._pool, acquire_timeout=self._connect_timeout, server="QuestDB"
        )

    def _open_sender(self) -> None:
        sender = questdb.Sender.from_conf(self.sender_conf())
        sender.establish()  # type: ignore[no-untyped-call]
        self._sender = sender

    def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close(flush=False)

    def _send(self, batch: Sequence[Tick], batch_id: str | None) -> None:
        sender = self._sender
        if sender is None:
            raise TickStoreNotStartedError("QuestDBTickStore is closed")
        frame = ticks_to_frame(batch)
        try:
            sender.dataframe(frame, table_name=self._table, symbols=_SYMBOL_COLUMNS, at="ts")
            sender.flush(transactional=True)
            if batch_id is not None:
                sender.row(
                    self._batches,
                    columns={"batch_id": batch_id, "tick_count": len(batch)},
                    at=questdb.TimestampNanos(newest_ts(batch)),
                )
                sender.flush(transactional=True)
        except questdb.QuestDBError as err:
            if err.code in _UNREACHABLE_CODES:
                raise TickStoreUnavailableError(f"QuestDB ILP endpoint unreachable: {err}") from err
            raise TickStoreError(f"QuestDB rejected the batch: {err}") from err

    def _schema_sql(self) -> list[str]:
        return [
            f"""CREATE TABLE IF NOT EXISTS {self._table} (
                symbol SYMBOL, exchange SYMBOL, kind SYMBOL,
                price DOUBLE, qty DOUBLE, bid DOUBLE, bid_size DOUBLE, ask DOUBLE,
                ask_size DOUBLE, seq LONG, received LONG, ts TIMESTAMP_NS
            ) TIMESTAMP(ts) PARTITION BY DAY WAL
            DEDUP UPSERT KEYS(ts, symbol, exchange, kind, seq)""",
            f"""CREATE TABLE IF NOT EXISTS {self._batches} (
                batch_id VARCHAR, tick_count LONG, ts TIMESTAMP_NS
            ) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, batch_id)""",
        ]


def _bar_row(row: Sequence[Any]) -> tuple[Any, ...]:
    """``(bucket, exchange, open, high, low, close, volume, vwap, trades)`` from a row."""
    bucket, exchanges, first_exchange, open_, high, low, close, volume, notional, mean, trades = row
    exchange = first_exchange if exchanges == 1 else MIXED_EXCHANGES
    vwap = mean if volume == 0 else notional / volume
    return (bucket, exchange, open_, high, low, close, volume, vwap, trades)


def _filters(
    symbol: str, start: int | None, end: int | None, exchange: str | None
) -> tuple[str, list[Any]]:
    # Timestamps are inlined as integer literals (validated ints): QuestDB reads an
    # integer compared with a TIMESTAMP_NS column as epoch nanoseconds.
    clauses = ["symbol = $1"]
    params: list[Any] = [symbol]
    if exchange is not None:
        params.append(exchange)
        clauses.append(f"exchange = ${len(params)}")
    if start is not None:
        clauses.append(f"ts >= {int(start)}")
    if end is not None:
        clauses.append(f"ts < {int(end)}")
    return " AND ".join(clauses), params
