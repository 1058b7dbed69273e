"""Market-data ingest benchmarks: parse + normalise, sustained writes, lag at offered load.

    .venv/bin/python benchmarks/ingest.py --backend all --ticks 1000000 --rate 20000

1. parse + normalise: Binance combined-stream frames (trade and bookTicker, bytes,
   the documented format with prices as strings, 20 symbols) through
   ``parse_frame`` on one thread; ticks/s per wall second and per CPU second,
   best of ``--repeat`` runs, with and without the feed's clock read per frame.
2. sustained writes: frames → ``parse_frame`` → ``IngestPipeline.put`` → TickStore,
   timed until the pipeline reports every tick committed; also from ticks parsed
   beforehand, which leaves the parse out.
3. lag at offered load: frames offered at ``--rate`` ticks/s for ``--duration``
   seconds in small bursts on the event loop, each stamped ``received`` when it is
   produced; receive→durable lag p50/p95/p99/max of every tick, from the
   pipeline's ``on_written`` hook.

The pipeline runs with the production defaults (batch 5,000 ticks, flush 0.1 s).
DuckDB writes to a temporary file; PostgreSQL to a unique table on
TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test), dropped
afterwards. Progress goes to stderr, results to stdout (tables, or ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import (
    Column,
    describe_machine,
    format_records,
    generate_frames,
    json_ready,
    percentiles,
    positive,
    progress,
    rates_text,
    started_tick_store,
)
from trademk.domain.market import Tick
from trademk.engine.clock import Clock, LiveClock
from trademk.ingest.pipeline import DEFAULT_BATCH_SIZE, IngestPipeline
from trademk.observability.logging import configure_logging
from trademk.venues.binance.schemas import parse_frame

PARSE_TARGET = 1_000_000
WRITE_TARGETS = {"duckdb": 600_000, "postgres": 250_000}
LAG_P99_TARGET_S = 1.0
BACKENDS = ("duckdb", "postgres")
BENCHMARKS = ("parse", "writes", "lag")
PARSE_VARIANTS = (("parse_frame", False, PARSE_TARGET), ("clock stamp + parse_frame", True, None))
WRITE_SOURCES = ("frames", "parsed ticks")

READ_CHUNK = 1_000  # frames handled between yields to the loop, like one socket read burst
BURST_INTERVAL_S = 0.005
NANOS = 1_000_000_000


def parse_all(frames: Sequence[bytes], received_ns: int) -> list[Tick]:
    """Every frame as a tick; raises if any frame is not one (the rates would be wrong)."""
    ticks = [tick for tick in (parse_frame(frame, received_ns) for frame in frames) if tick]
    if len(ticks) != len(frames):
        raise RuntimeError(f"{len(frames) - len(ticks)} generated frames did not parse to ticks")
    return ticks


# -- 1. parse + normalise -----------------------------------------------------


def measure_parse(
    frames: Sequence[bytes], clock: Clock, *, stamp_each: bool
) -> tuple[float, float]:
    """Ticks/s of ``parse_frame`` on this thread: (per wall second, per CPU second).

    With ``stamp_each`` every frame also reads the clock for its receive stamp, as
    the feed does; without, one stamp is passed to every call. The CPU-second
    figure leaves out time the thread spent waiting for a core.
    """
    parse, now = parse_frame, clock.now_ns
    cpu_began, began = time.thread_time_ns(), clock.monotonic_ns()
    if stamp_each:
        for frame in frames:
            parse(frame, now())
    else:
        received = now()
        for frame in frames:
            parse(frame, received)
    elapsed_ns = clock.monotonic_ns() - began
    cpu_ns = max(1, time.thread_time_ns() - cpu_began)
    return len(frames) * NANOS / elapsed_ns, len(frames) * NANOS / cpu_ns


# -- pipeline plumbing --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """The pipeline knobs a run uses (production defaults unless overridden)."""

    batch_size: int = DEFAULT_BATCH_SIZE
    flush_interval: float = 0.1


class _Collector:
    """The ``on_written`` hook: counts durable ticks, keeps lags, signals when all are in."""

    def __init__(self, expected: int, keep_lags: bool) -> None:
        self.expected = expected
        self.written = 0
        self.lags: list[float] = []
        self._keep_lags = keep_lags
        self.done = asyncio.Event()

    def __call__(self, size: int, lags: Sequence[float]) -> None:
        self.written += size
        if self._keep_lags:
            self.lags.extend(lags)
        if self.written >= self.expected:
            self.done.set()

    async def wait(self, limit_s: float) -> None:
        """Until every expected tick is durable; RuntimeError after ``limit_s`` seconds."""
        try:
            await asyncio.wait_for(self.done.wait(), limit_s)
        except TimeoutError as err:
            raise RuntimeError(
                f"only {self.written:,} of {self.expected:,} ticks became durable "
                f"within {limit_s:.0f} s"
            ) from err


@contextlib.asynccontextmanager
async def pipeline_into(
    backend: str, clock: Clock, settings: PipelineSettings, collector: _Collector
) -> AsyncIterator[IngestPipeline]:
    """A started pipeline into a fresh store, spilling (if ever) to a temporary directory."""
    async with started_tick_store(backend) as store:
        with tempfile.TemporaryDirectory(prefix="trademk-bench-spill-") as spill_dir:
            pipeline = IngestPipeline(
                store,
                clock,
                spill_dir=Path(spill_dir),
                batch_size=settings.batch_size,
                flush_interval=settings.flush_interval,
                on_written=collector,
            )
            await pipeline.start()
            try:
                yield pipeline
            finally:
                await pipeline.stop()
            counters = pipeline.counters
            if counters.write_errors or counters.spilled_batches:
                progress(
                    f"warning: {counters.write_errors} write errors, {counters.spilled_batches} "
                    f"spilled batches (last error: {counters.last_error})"
                )


async def _put_all(
    pipeline: IngestPipeline, items: Sequence[bytes] | Sequence[Tick], clock: Clock
) -> None:
    """Parse (if frames) and put each item, one tick at a time as the market-data pump does."""
    put = pipeline.put
    for item in items:
        tick = parse_frame(item, clock.now_ns()) if isinstance(item, bytes) else item
        if tick is not None:
            await put(tick)


# -- 2. sustained writes ------------------------------------------------------


async def measure_writes(
    backend: str,
    source: Sequence[bytes] | Sequence[Tick],
    clock: Clock,
    settings: PipelineSettings,
) -> tuple[float, float]:
    """(ticks per second, CPU µs per tick) from the first item put to the last tick committed.

    ``source`` is frames (each parsed, then put) or ticks parsed beforehand. The CPU
    figure is this process's, all threads (DuckDB's included, the PostgreSQL server
    not), so it shows the cost per tick whatever else the machine is running.
    """
    collector = _Collector(len(source), keep_lags=False)
    async with pipeline_into(backend, clock, settings, collector) as pipeline:
        cpu_began, began = time.process_time_ns(), clock.monotonic_ns()
        for offset in range(0, len(source), READ_CHUNK):
            await _put_all(pipeline, source[offset : offset + READ_CHUNK], clock)
            await asyncio.sleep(0)
        await collector.wait(limit_s=600.0)
        elapsed_ns = clock.monotonic_ns() - began
        cpu_ns = time.process_time_ns() - cpu_began
    return len(source) * NANOS / elapsed_ns, cpu_ns / 1e3 / len(source)


# -- 3. lag at offered load ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class LagRun:
    """One offered-load run: the pacing achieved and receive→durable lag in seconds."""

    achieved_rate: float
    pacing_late_max_s: float
    lag: dict[str, float | None]
    samples: int


async def measure_lag(
    backend: str, frames: Sequence[bytes], rate: float, clock: Clock, settings: PipelineSettings
) -> LagRun:
    """Offer ``frames`` at ``rate`` ticks/s and collect every tick's receive→durable lag."""
    collector = _Collector(len(frames), keep_lags=True)
    async with pipeline_into(backend, clock, settings, collector) as pipeline:
        sent_s, late_max_s = await _offer(pipeline, frames, rate, clock)
        await collector.wait(limit_s=max(60.0, 3 * sent_s))
    return LagRun(
        len(frames) / sent_s, late_max_s, percentiles(collector.lags), len(collector.lags)
    )


async def _offer(
    pipeline: IngestPipeline, frames: Sequence[bytes], rate: float, clock: Clock
) -> tuple[float, float]:
    """Put frames as they fall due; returns (seconds taken, worst lateness vs schedule)."""
    total, sent, late_max_s = len(frames), 0, 0.0
    began = clock.monotonic_ns()
    while sent < total:
        elapsed_s = (clock.monotonic_ns() - began) / NANOS
        due = min(total, int(elapsed_s * rate))
        if due > sent:
            # Frame number ``sent`` fell due at sent / rate; this is how long it waited.
            late_max_s = max(late_max_s, elapsed_s - sent / rate)
            await _put_all(pipeline, frames[sent:due], clock)
            sent = due
        if sent < total:
            await asyncio.sleep(BURST_INTERVAL_S)
    return (clock.monotonic_ns() - began) / NANOS, late_max_s


# -- driver -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """What to run, from the command line."""

    backends: tuple[str, ...]
    benchmarks: tuple[str, ...]
    ticks: int
    rate: float
    duration_s: float
    repeat: int
    seed: int
    pipeline: PipelineSettings


def run_parse(config: Config, clock: Clock, frames: Sequence[bytes]) -> list[dict[str, Any]]:
    """Best-of-``repeat`` parse rates per variant; variants alternate so load hits both."""
    parse_all(frames, 1)
    wall: dict[str, list[float]] = {name: [] for name, _, _ in PARSE_VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in PARSE_VARIANTS}
    for run in range(config.repeat):
        for name, stamp_each, _ in PARSE_VARIANTS:
            wall_rate, cpu_rate = measure_parse(frames, clock, stamp_each=stamp_each)
            wall[name].append(wall_rate)
            cpu[name].append(cpu_rate)
            progress(
                f"{name} run {run + 1}/{config.repeat}: {wall_rate:,.0f} ticks/s, "
                f"{cpu_rate:,.0f} per CPU second"
            )
    return [
        {
            "variant": name,
            "frames": len(frames),
            "ticks_per_s": max(wall[name]),
            "runs": wall[name],
            "ticks_per_cpu_s": max(cpu[name]),
            "cpu_runs": cpu[name],
            "target": target,
            "meets_target": None if target is None else max(wall[name]) >= target,
        }
        for name, _, target in PARSE_VARIANTS
    ]


async def run_writes(config: Config, clock: Clock, frames: Sequence[bytes]) -> list[dict[str, Any]]:
    """Best-of-``repeat`` write rate per backend, from frames and from parsed ticks."""
    sources: dict[str, Sequence[bytes] | Sequence[Tick]] = {
        "frames": frames,
        "parsed ticks": parse_all(frames, clock.now_ns()),
    }
    results: list[dict[str, Any]] = []
    for backend in config.backends:
        rates: dict[str, list[float]] = {name: [] for name in WRITE_SOURCES}
        cpu: dict[str, list[float]] = {name: [] for name in WRITE_SOURCES}
        for run in range(config.repeat):
            for name in WRITE_SOURCES:
                rate, cpu_us = await measure_writes(backend, sources[name], clock, config.pipeline)
                rates[name].append(rate)
                cpu[name].append(cpu_us)
                progress(
                    f"writes {backend} from {name} run {run + 1}: {rate:,.0f} ticks/s, "
                    f"{cpu_us:.2f} CPU µs/tick"
                )
        target = WRITE_TARGETS[backend]
        results.extend(
            {
                "backend": backend,
                "source": name,
                "ticks": len(frames),
                "ticks_per_s": max(rates[name]),
                "runs": rates[name],
                "cpu_us_per_tick": min(cpu[name]),
                "cpu_runs_us_per_tick": cpu[name],
                "target": target,
                "meets_target": max(rates[name]) >= target,
            }
            for name in WRITE_SOURCES
        )
    return results


async def run_lag(config: Config, clock: Clock) -> list[dict[str, Any]]:
    """Per backend, the run (of ``repeat``) with the lowest p99 lag, and every run's p99."""
    frames = generate_frames(max(1, round(config.rate * config.duration_s)), seed=config.seed)
    results = []
    for backend in config.backends:
        runs = []
        for run in range(config.repeat):
            runs.append(await measure_lag(backend, frames, config.rate, clock, config.pipeline))
            progress(
                f"lag {backend} run {run + 1}/{config.repeat}: p99 "
                f"{_ms(runs[-1].lag['p99'])} ms at {runs[-1].achieved_rate:,.0f} ticks/s"
            )
        best = min(runs, key=lambda item: item.lag["p99"] or 0.0)
        p99 = best.lag["p99"]
        results.append(
            {
                "backend": backend,
                "duration_s": config.duration_s,
                "offered_rate": config.rate,
                "achieved_rate": best.achieved_rate,
                "pacing_late_max_ms": best.pacing_late_max_s * 1e3,
                "samples": best.samples,
                **{f"lag_{key}_ms": _ms(value) for key, value in best.lag.items()},
                "p99_runs_ms": [_ms(item.lag["p99"]) for item in runs],
                "target_p99_ms": LAG_P99_TARGET_S * 1e3,
                "meets_target": p99 is not None and p99 < LAG_P99_TARGET_S,
            }
        )
    return results


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 3)


async def run_all(config: Config, clock: Clock) -> dict[str, Any]:
    """Run the chosen benchmarks; results keyed by benchmark name."""
    results: dict[str, Any] = {}
    wanted = config.benchmarks
    needs_frames = "parse" in wanted or "writes" in wanted
    frames = generate_frames(config.ticks, seed=config.seed) if needs_frames else []
    if "parse" in wanted:
        results["parse"] = run_parse(config, clock, frames)
    if "writes" in wanted:
        results["writes"] = await run_writes(config, clock, frames)
    if "lag" in wanted:
        results["lag"] = await run_lag(config, clock)
    return results


def _at_least(row: Mapping[str, Any]) -> str | None:
    return None if row["target"] is None else f">= {row['target']:,}"


def render_tables(config: Config, results: dict[str, Any]) -> str:
    """The results as readable tables, one per benchmark."""
    runs: Column = ("runs", lambda row: rates_text(row["runs"]))
    tables: dict[str, tuple[str, list[Column]]] = {
        "parse": (
            "parse + normalise (one thread)",
            [("variant", "variant"), ("frames", "frames"), ("ticks/s (best)", "ticks_per_s"),
             runs, ("per CPU s (best)", "ticks_per_cpu_s"), ("target", _at_least),
             ("met", "meets_target")],
        ),
        "writes": (
            "sustained writes: [frames -> parse_frame] -> IngestPipeline.put -> store",
            [("backend", "backend"), ("from", "source"), ("ticks", "ticks"),
             ("ticks/s (best)", "ticks_per_s"), runs, ("CPU µs/tick", "cpu_us_per_tick"),
             ("target", _at_least), ("met", "meets_target")],
        ),
        "lag": (
            f"receive-to-durable lag (ms) at {config.rate:,.0f} ticks/s offered "
            f"for {config.duration_s:g} s",
            [("backend", "backend"), ("achieved/s", "achieved_rate"), ("p50", "lag_p50_ms"),
             ("p95", "lag_p95_ms"), ("p99", "lag_p99_ms"), ("max", "lag_max_ms"),
             ("late max", "pacing_late_max_ms"),
             ("target p99", lambda row: f"< {row['target_p99_ms']:,.0f}"),
             ("met", "meets_target")],
        ),
    }  # fmt: skip
    return "\n\n".join(
        format_records(title, columns, results[name])
        for name, (title, columns) in tables.items()
        if name in results
    )


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, bool]:
    """Command line → (:class:`Config`, JSON output?); ``--quick``: one run, 1 s of lag."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--backend", choices=(*BACKENDS, "all"), default="all")
    add("--benchmarks", default=",".join(BENCHMARKS), help="a subset of parse,writes,lag")
    add("--ticks", type=positive(int), default=1_000_000, help="frames for parse and writes")
    add("--rate", type=positive(float), default=20_000.0, help="offered load, ticks/s")
    add("--duration", type=positive(float), help="seconds offered (10; 1 with --quick)")
    add("--repeat", type=positive(int), help="runs per figure, best shown (3; 1 with --quick)")
    add("--batch-size", type=positive(int), default=DEFAULT_BATCH_SIZE)
    add("--flush-interval", type=positive(float), default=0.1)
    add("--seed", type=int, default=7)
    add("--quick", action="store_true", help="smoke-test configuration")
    add("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    chosen = {name.strip() for name in args.benchmarks.split(",") if name.strip()}
    if not chosen or not chosen <= set(BENCHMARKS):
        parser.error(
            f"--benchmarks takes names from {','.join(BENCHMARKS)}; "
            f"unknown: {','.join(sorted(chosen - set(BENCHMARKS))) or '(none given)'}"
        )
    default_duration, default_repeat = (1.0, 1) if args.quick else (10.0, 3)
    config = Config(
        backends=BACKENDS if args.backend == "all" else (args.backend,),
        benchmarks=tuple(name for name in BENCHMARKS if name in chosen),
        ticks=args.ticks,
        rate=args.rate,
        duration_s=args.duration or default_duration,
        repeat=args.repeat or default_repeat,
        seed=args.seed,
        pipeline=PipelineSettings(args.batch_size, args.flush_interval),
    )
    return config, args.json


async def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmarks and print the results."""
    config, as_json = parse_args(argv)
    configure_logging(level="WARNING")  # the pipeline's info lines would drown the results
    task = asyncio.current_task()
    if task is not None:  # SIGTERM unwinds like Ctrl-C, so temporary tables are dropped
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    clock = LiveClock()
    machine = describe_machine(clock)
    results = await run_all(config, clock)
    if as_json:
        document = {"machine": machine.as_dict(), "config": asdict(config), "results": results}
        print(json.dumps(json_ready(document), indent=2))
    else:
        print(f"{machine.describe()}\n\n{render_tables(config, results)}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except asyncio.CancelledError:  # SIGTERM, after the clean-up above has run
        raise SystemExit("interrupted") from None
