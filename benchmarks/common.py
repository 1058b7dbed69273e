"""Helpers shared by the benchmark scripts.

Machine description, percentiles, result tables, small CLI helpers, a throwaway
TickStore per run, and realistic Binance combined-stream frames. Benchmarks run
as scripts (``python benchmarks/<name>.py``), so they import this module as
``common`` from their own directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg

from trademk.domain.ports import TickStore
from trademk.engine.clock import Clock, LiveClock, utc_now
from trademk.ingest.stats import nearest_rank
from trademk.storage.ticks import open_tick_store

POSTGRES_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
T0_MS = 1_795_478_400_000  # 2026-11-24 00:00 UTC
# Typical prices; earlier symbols trade more often (weights 1/2, 1/3, ...).
SYMBOL_PRICES = {
    "BTCUSDT": 97_250.0, "ETHUSDT": 3_410.0, "SOLUSDT": 241.3, "BNBUSDT": 652.4,
    "XRPUSDT": 1.452, "DOGEUSDT": 0.3911, "ADAUSDT": 0.9843, "TRXUSDT": 0.2011,
    "AVAXUSDT": 42.17, "LINKUSDT": 18.24, "SHIBUSDT": 0.00002451, "TONUSDT": 5.612,
    "DOTUSDT": 8.93, "LTCUSDT": 95.4, "BCHUSDT": 481.2, "NEARUSDT": 6.47,
    "UNIUSDT": 12.08, "XLMUSDT": 0.4512, "ATOMUSDT": 8.04, "APTUSDT": 12.51,
}  # fmt: skip
_CPUINFO = Path("/proc/cpuinfo")
_MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True, slots=True)
class Machine:
    """What a benchmark ran on, printed with every result."""

    cpu_model: str
    cores: int
    usable_cores: int
    memory_gib: float
    python: str
    system: str
    load_average: tuple[float, float, float]
    date_utc: str

    def describe(self) -> str:
        """Two human-readable lines."""
        load = "/".join(f"{value:.1f}" for value in self.load_average)
        return (
            f"Machine: {self.cpu_model}, {self.cores} cores ({self.usable_cores} usable), "
            f"{self.memory_gib:.1f} GiB RAM, Python {self.python}, {self.system}\n"
            f"Date: {self.date_utc}   load average (1/5/15 min): {load}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The description as JSON-ready values."""
        return asdict(self)


def describe_machine(clock: Clock | None = None) -> Machine:
    """Describe this machine from /proc (Linux) and the interpreter."""
    now = utc_now(clock or LiveClock())
    return Machine(
        cpu_model=cpu_model(),
        cores=os.cpu_count() or 1,
        usable_cores=len(os.sched_getaffinity(0)),
        memory_gib=memory_total_bytes() / 2**30,
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()} {platform.machine()}",
        load_average=os.getloadavg(),
        date_utc=now.strftime("%Y-%m-%d %H:%M UTC"),
    )


def cpu_model(cpuinfo: Path = _CPUINFO) -> str:
    """The ``model name`` of the first CPU in /proc/cpuinfo, else the platform's name."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_total_bytes(meminfo: Path = _MEMINFO) -> int:
    """Total memory from /proc/meminfo (0 when unavailable)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def percentiles(
    samples: Iterable[float], levels: Sequence[int] = (50, 95, 99)
) -> dict[str, float | None]:
    """Nearest-rank ``p<level>`` values plus ``max`` (all None when there are no samples).

    Same definition as the ingest pipeline's lag window, so figures compare directly.
    """
    ordered = sorted(samples)
    result: dict[str, float | None] = {
        f"p{level}": nearest_rank(ordered, level) for level in levels
    }
    result["max"] = ordered[-1] if ordered else None
    return result


def format_table(
    title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "  "
) -> str:
    """A plain-text table: text left-aligned, numbers right-aligned with thousands separators."""
    cells = [[_cell(value) for value in row] for row in rows]
    columns = range(len(headers))
    numeric = [all(_is_number(row[i]) for row in cells if i < len(row)) for i in columns]
    widths = [
        max([len(headers[i]), *(len(row[i]) for row in cells if i < len(row))]) for i in columns
    ]
    lines = [title]
    titles = (_align(headers[i], widths[i], numeric[i]) for i in columns)
    lines.append(indent + "  ".join(titles))
    lines.append(indent + "  ".join("-" * w for w in widths))
    for row in cells:
        aligned = (_align(value, widths[i], numeric[i]) for i, value in enumerate(row))
        lines.append((indent + "  ".join(aligned)).rstrip())
    return "\n".join(lines)


Column = tuple[str, str | Callable[[Mapping[str, Any]], Any]]


def format_records(
    title: str, columns: Sequence[Column], records: Iterable[Mapping[str, Any]]
) -> str:
    """:func:`format_table` over dicts: each column is (header, key or function of the dict)."""
    rows = [
        [key(record) if callable(key) else record.get(key) for _, key in columns]
        for record in records
    ]
    return format_table(title, [header for header, _ in columns], rows)


def _is_number(text: str) -> bool:
    stripped = text.replace(",", "").replace(".", "", 1).lstrip("-")
    return stripped.isdigit() or text == "-"


def _align(text: str, width: int, right: bool) -> str:
    return text.rjust(width) if right else text.ljust(width)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        decimals = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
        return f"{value:,.{decimals}f}"
    return str(value)


def rates_text(rates: Sequence[float]) -> str:
    """Every run's rate, comma separated, for a ``runs`` column."""
    return " / ".join(f"{rate:,.0f}" for rate in rates)


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only results)."""
    print(message, file=sys.stderr, flush=True)


def positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    """An argparse ``type=`` that accepts only positive numbers of ``kind``."""

    def convert(text: str) -> int | float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return convert


def postgres_url() -> str:
    """TEST_POSTGRES_URL, or the local test server."""
    return os.environ.get("TEST_POSTGRES_URL", POSTGRES_URL_DEFAULT)


async def drop_postgres_tick_table(url: str, table: str) -> None:
    """Drop a PostgresTickStore's table, batch-id table and ``ord`` sequence."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_batches")
        await conn.execute(f"DROP SEQUENCE IF EXISTS {table}_ord_seq")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def started_tick_store(backend: str) -> AsyncIterator[TickStore]:
    """A started, empty TickStore for one run (``duckdb`` or ``postgres``), removed afterwards.

    DuckDB gets a file in a temporary directory; PostgreSQL a uniquely named table
    on :func:`postgres_url`, dropped with its batch-id table and sequence.
    """
    if backend == "duckdb":
        with tempfile.TemporaryDirectory(prefix="trademk-bench-") as directory:
            store = open_tick_store(f"duckdb:///{directory}/ticks.duckdb")
            await store.start()
            try:
                yield store
            finally:
                await store.close()
        return
    if backend != "postgres":
        raise ValueError(f"unknown tick store backend {backend!r}; use duckdb or postgres")
    url, table = postgres_url(), f"bench_{uuid.uuid4().hex[:12]}"
    store = open_tick_store(url, table=table)
    try:
        await store.start()
        yield store
    finally:
        await store.close()
        await drop_postgres_tick_table(url, table)


def json_ready(value: Any) -> Any:
    """Tuples to lists, recursively, so a result dict serialises the same every time."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


# -- Binance combined-stream frames -------------------------------------------


@dataclass(slots=True)
class _SymbolState:
    symbol: str
    price: float
    trade_id: int
    update_id: int


def generate_frames(count: int, *, seed: int = 7, quote_share: float = 0.5) -> list[bytes]:
    """``count`` deterministic combined-stream frames, trades and book tickers mixed.

    Binance's documented layout exactly (no whitespace, prices and quantities as
    strings with 8 decimals, the trade's ``M`` field included); prices follow a
    random walk per symbol and event times advance from 2026-11-24 00:00 UTC.
    """
    rng = random.Random(seed)
    states = [
        _SymbolState(name, price, 3_000_000_000 + i * 1_000_000, 50_000_000_000)
        for i, (name, price) in enumerate(SYMBOL_PRICES.items())
    ]
    weights = [1.0 / (rank + 2) for rank in range(len(states))]
    event_ms = T0_MS
    frames = []
    for state in rng.choices(states, weights=weights, k=count):
        event_ms += rng.random() < 0.2
        state.price = max(state.price * (1.0 + rng.gauss(0.0, 1e-4)), 1e-6)
        if rng.random() < quote_share:
            frames.append(_book_ticker_frame(state, rng))
        else:
            frames.append(_trade_frame(state, rng, event_ms))
    return frames


def _trade_frame(state: _SymbolState, rng: random.Random, event_ms: int) -> bytes:
    state.trade_id += 1
    qty = rng.expovariate(1.0) * 1_000.0 / state.price
    maker = "true" if rng.random() < 0.5 else "false"
    return (
        f'{{"stream":"{state.symbol.lower()}@trade","data":{{"e":"trade","E":{event_ms + 1},'
        f'"s":"{state.symbol}","t":{state.trade_id},"p":"{state.price:.8f}",'
        f'"q":"{qty:.8f}","T":{event_ms},"m":{maker},"M":true}}}}'
    ).encode()


def _book_ticker_frame(state: _SymbolState, rng: random.Random) -> bytes:
    state.update_id += 1
    half_spread = max(state.price * 5e-6, 1e-8)
    bid_qty = rng.expovariate(1.0) * 5_000.0 / state.price
    ask_qty = rng.expovariate(1.0) * 5_000.0 / state.price
    return (
        f'{{"stream":"{state.symbol.lower()}@bookTicker","data":{{"u":{state.update_id},'
        f'"s":"{state.symbol}","b":"{state.price - half_spread:.8f}","B":"{bid_qty:.8f}",'
        f'"a":"{state.price + half_spread:.8f}","A":"{ask_qty:.8f}"}}}}'
    ).encode()
