"""Backend-specific TickStore behaviour: URL factory, DuckDB files, PostgreSQL outages,
and the QuestDB ILP encoding (checked without a server: CI has none)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import questdb

from trademk.domain.market import NANOS_PER_SECOND, Tick, TickKind
from trademk.storage.ticks import (
    DuckDBTickStore,
    PostgresTickStore,
    QuestDBTickStore,
    TickStoreNotStartedError,
    TickStoreUnavailableError,
    open_tick_store,
)
from trademk.storage.ticks.questdb_store import ticks_to_frame

T0 = 1_699_920_000 * NANOS_PER_SECOND


def trade(ts: int, price: float, seq: int | None = None) -> Tick:
    return Tick("BTCUSDT", "binance", TickKind.TRADE, ts, price, 1.0, seq=seq, received=ts + 1)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_netloc(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}:{port}"))


class TcpProxy:
    """Forwards 127.0.0.1:port to a server; ``stop()`` plays a server outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(postgres_url)
    tcp_proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await tcp_proxy.start()
    try:
        yield tcp_proxy
    finally:
        with contextlib.suppress(AssertionError):
            await tcp_proxy.stop()


# --- factory ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("duckdb:///data/ticks.duckdb", "data/ticks.duckdb"),
        ("duckdb:////var/lib/trademk/ticks.duckdb", "/var/lib/trademk/ticks.duckdb"),
        ("duckdb:///:memory:", ":memory:"),
    ],
)
def test_factory_maps_duckdb_urls_to_paths(url: str, path: str) -> None:
    store = open_tick_store(url)

    assert isinstance(store, DuckDBTickStore)
    assert store.path == path


@pytest.mark.parametrize("url", ["duckdb://", "duckdb:///", "duckdb://host/x.duckdb"])
def test_factory_rejects_duckdb_urls_without_a_path(url: str) -> None:
    with pytest.raises(ValueError, match="duckdb:///relative"):
        open_tick_store(url)


def test_factory_rejects_unknown_schemes_listing_the_accepted_ones() -> None:
    with pytest.raises(ValueError) as raised:
        open_tick_store("mysql://root:secret@db/ticks")

    message = str(raised.value)
    for scheme in ("duckdb://", "postgresql://", "postgres://", "postgresql+asyncpg://"):
        assert scheme in message
    assert "questdb://" in message
    assert "secret" not in message


def test_factory_reads_questdb_endpoints_and_credentials_from_the_url() -> None:
    store = open_tick_store("questdb://qdb.local:9100?pg_port=8900&user=u&password=p", table="tk")

    assert isinstance(store, QuestDBTickStore)
    assert "addr=qdb.local:9100;" in store.sender_conf()
    assert "protocol_version=2;" in store.sender_conf()


@pytest.mark.parametrize("query", ["pgport=1", "pg_port=abc"])
def test_factory_rejects_bad_questdb_parameters(query: str) -> None:
    with pytest.raises(ValueError, match="QuestDB URL parameter"):
        open_tick_store(f"questdb://localhost:9000?{query}")


@pytest.mark.parametrize("scheme", ["postgres", "postgresql+asyncpg"])
async def test_factory_accepts_postgres_url_spellings(
    postgres_url: str, unique_name: str, scheme: str
) -> None:
    store = open_tick_store(
        postgres_url.replace("postgresql://", f"{scheme}://", 1), table=unique_name
    )
    assert isinstance(store, PostgresTickStore)
    await store.start()
    try:
        assert await store.write([trade(T0, 1.0)]) == 1
        assert (await store.health())["table"] == unique_name
    finally:
        await store.close()


def test_table_names_must_be_plain_identifiers() -> None:
    with pytest.raises(ValueError, match="invalid table name"):
        DuckDBTickStore(table="ticks; DROP TABLE users")


# --- DuckDB ------------------------------------------------------------------------------


async def test_duckdb_data_and_batch_ids_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ticks.duckdb"
    first = DuckDBTickStore(path)
    await first.start()
    await first.write([trade(T0, 1.0, seq=1), trade(T0 + 1, 2.0, seq=2)], batch_id="b-1")
    await first.close()

    second = DuckDBTickStore(path)
    await second.start()
    try:
        assert await second.write([trade(T0, 1.0, seq=1)], batch_id="b-1") == 0
        await second.write([trade(T0 + 2, 3.0, seq=3)])
        assert [t.price for t in await second.ticks("BTCUSDT")] == [3.0, 2.0, 1.0]
        assert (await second.health())["rows"] == 3
    finally:
        await second.close()


async def test_duckdb_store_used_before_start_raises() -> None:
    store = DuckDBTickStore()

    with pytest.raises(TickStoreNotStartedError):
        await store.write([trade(T0, 1.0)])


async def test_duckdb_keeps_the_event_loop_free_during_a_write() -> None:
    store = DuckDBTickStore()
    await store.start()
    ticks_seen = 0

    async def heartbeat() -> None:
        nonlocal ticks_seen
        while True:
            ticks_seen += 1
            await asyncio.sleep(0)

    beat = asyncio.create_task(heartbeat())
    try:
        await store.write([trade(T0 + i, float(i), seq=i) for i in range(100_000)])
    finally:
        beat.cancel()
        await store.close()
    # The loop ran other tasks while the worker thread inserted the batch.
    assert ticks_seen > 10


# --- PostgreSQL ------------------------------------------------------------------------


async def test_postgres_write_fails_fast_when_the_server_is_gone_and_recovers(
    postgres_url: str, proxy: TcpProxy, unique_name: str
) -> None:
    store = PostgresTickStore(
        with_netloc(postgres_url, "127.0.0.1", proxy.port), table=unique_name, connect_timeout=2
    )
    await store.start()
    try:
        await store.write([trade(T0, 1.0, seq=1)], batch_id="first")
        await proxy.stop()  # the port is closed now: connections are refused

        async with asyncio.timeout(10):
            with pytest.raises(TickStoreUnavailableError):
                await store.write([trade(T0 + 1, 2.0, seq=2)], batch_id="second")
            with pytest.raises(TickStoreUnavailableError):
                await store.health()

        await proxy.start()  # the server is back on the same port
        assert await store.write([trade(T0 + 1, 2.0, seq=2)], batch_id="second") == 1
        assert await store.write([trade(T0 + 1, 2.0, seq=2)], batch_id="second") == 0
        assert [t.seq for t in await store.ticks("BTCUSDT")] == [2, 1]
    finally:
        await store.close()


async def test_postgres_start_on_a_closed_port_raises_instead_of_hanging(
    postgres_url: str, unique_name: str
) -> None:
    store = PostgresTickStore(
        with_netloc(postgres_url, "127.0.0.1", closed_port()), table=unique_name
    )

    async with asyncio.timeout(10):
        with pytest.raises(TickStoreUnavailableError):
            await store.start()
    with pytest.raises(TickStoreNotStartedError):
        await store.write([trade(T0, 1.0)])


async def test_postgres_silent_server_times_out(postgres_url: str, unique_name: str) -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, never answer
        writer.close()

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    store = PostgresTickStore(
        with_netloc(postgres_url, "127.0.0.1", port), table=unique_name, connect_timeout=0.3
    )
    try:
        async with asyncio.timeout(10):
            with pytest.raises(TickStoreUnavailableError):
                await store.start()
    finally:
        silent.close()


async def test_postgres_concurrent_writes_of_one_batch_id_store_one_copy(
    postgres_url: str, unique_name: str
) -> None:
    first = PostgresTickStore(postgres_url, table=unique_name)
    second = PostgresTickStore(postgres_url, table=unique_name)
    await asyncio.gather(first.start(), second.start())  # concurrent schema creation
    batch = [trade(T0 + i, float(i), seq=i) for i in range(2_000)]
    try:
        results = await asyncio.gather(
            first.write(batch, batch_id="shared"), second.write(batch, batch_id="shared")
        )
        assert sorted(results) == [0, 2_000]
        assert len(await first.ticks("BTCUSDT", limit=5_000)) == 2_000
    finally:
        await asyncio.gather(first.close(), second.close())


# --- QuestDB (no server needed) -----------------------------------------------------------


def test_questdb_batches_encode_nanosecond_timestamps_symbols_and_nulls() -> None:
    batch = [
        Tick("BTCUSDT", "binance", TickKind.TRADE, T0 + 123_456_789, 1.5, 0.25, seq=5, received=9),
        Tick("BTCUSDT", "binance", TickKind.QUOTE, T0 + 123_456_790, 2.5, 0.0, bid=2.0, ask=3.0),
    ]
    sender = questdb.Sender.from_conf(
        f"http::addr=127.0.0.1:{closed_port()};auto_flush=off;protocol_version=2;"
    )
    sender.establish()
    try:
        sender.dataframe(
            ticks_to_frame(batch),
            table_name="market_ticks",
            symbols=["symbol", "exchange", "kind"],
            at="ts",
        )
        lines = bytes(sender).split(b"\n")
    finally:
        sender.close(flush=False)

    assert lines[0].startswith(b"market_ticks,symbol=BTCUSDT,exchange=binance,kind=trade ")
    assert lines[0].endswith(b" %dn" % (T0 + 123_456_789))
    assert b"seq=5i" in lines[0] and b"received=9i" in lines[0]
    assert lines[1].startswith(b"market_ticks,symbol=BTCUSDT,exchange=binance,kind=quote ")
    assert b"seq=" not in lines[1]  # a missing seq is sent as no value: NULL
    assert lines[1].endswith(b" %dn" % (T0 + 123_456_790))


async def test_questdb_start_on_a_closed_port_raises() -> None:
    store = QuestDBTickStore("127.0.0.1", closed_port(), pg_port=closed_port())

    async with asyncio.timeout(10):
        with pytest.raises(TickStoreUnavailableError):
            await store.start()
