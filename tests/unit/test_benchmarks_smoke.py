"""Every benchmark script runs in a tiny configuration and prints its result lines.

These tests check that the scripts work and report what they measure; they never
look at how fast anything was (DESIGN.md §5).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
RATE = r"[\d,]+"  # a figure as the tables print it, e.g. 1,234,567
MS = r"[\d,.]+"


def run_benchmark(
    script: str, *args: str, postgres_url: str | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if postgres_url is not None:
        env["TEST_POSTGRES_URL"] = postgres_url
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_lines(stdout: str, patterns: list[str]) -> None:
    for pattern in patterns:
        assert re.search(pattern, stdout, re.MULTILINE), (
            f"no line matches {pattern!r} in:\n{stdout}"
        )


def load_common() -> ModuleType:
    """benchmarks/common.py, which the scripts import from their own directory."""
    name = "trademk_benchmarks_common"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / "common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres
def test_ingest_benchmark_prints_a_result_row_per_measurement_and_backend(
    postgres_url: str,
) -> None:
    result = run_benchmark(
        "ingest.py",
        "--backend=all",
        "--ticks=2000",
        "--quick",
        "--duration=0.3",
        "--rate=5000",
        postgres_url=postgres_url,
    )

    assert result.returncode == 0, result.stderr
    assert_lines(
        result.stdout,
        [
            r"^Machine: .+, \d+ cores \(\d+ usable\), [\d.]+ GiB RAM, Python 3\.",
            r"^Date: \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC",
            rf"^\s+parse_frame\s+2,000\s+{RATE}\s+{RATE}\s+{RATE}\s+>= 1,000,000\s+(yes|NO)$",
            rf"^\s+clock stamp \+ parse_frame\s+2,000\s+{RATE}\s+{RATE}\s+{RATE}\s+-\s+-$",
            *(
                rf"^\s+{backend}\s+{source}\s+2,000\s+{RATE}\s+{RATE}\s+{MS}\s+>= {target}\s+"
                r"(yes|NO)$"
                for backend, target in (("duckdb", "600,000"), ("postgres", "250,000"))
                for source in ("frames", "parsed ticks")
            ),
            r"^receive-to-durable lag \(ms\) at 5,000 ticks/s offered for 0.3 s",
            *(
                rf"^\s+{backend}\s+{RATE}(\s+{MS}){{5}}\s+< 1,000\s+(yes|NO)$"
                for backend in ("duckdb", "postgres")
            ),
        ],
    )


def test_ingest_benchmark_json_reports_every_measurement() -> None:
    result = run_benchmark(
        "ingest.py", "--backend=duckdb", "--ticks=2000", "--quick", "--duration=0.3", "--json"
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["machine"]["cores"] >= 1
    assert document["config"]["backends"] == ["duckdb"]
    results = document["results"]
    assert [row["variant"] for row in results["parse"]] == [
        "parse_frame",
        "clock stamp + parse_frame",
    ]
    assert all(row["frames"] == 2000 and row["ticks_per_s"] > 0 for row in results["parse"])
    assert [(row["backend"], row["source"]) for row in results["writes"]] == [
        ("duckdb", "frames"),
        ("duckdb", "parsed ticks"),
    ]
    for writes in results["writes"]:
        assert writes["ticks"] == 2000
        assert writes["target"] == 600_000
        assert len(writes["runs"]) == 1 and writes["ticks_per_s"] == writes["runs"][0]
        assert writes["cpu_us_per_tick"] > 0
    [lag] = results["lag"]
    assert lag["samples"] == 6000  # 20,000 ticks/s x 0.3 s, every tick's lag recorded
    assert 0 < lag["lag_p50_ms"] <= lag["lag_p95_ms"] <= lag["lag_p99_ms"] <= lag["lag_max_ms"]
    assert lag["target_p99_ms"] == 1000


def test_ingest_benchmark_rejects_an_unknown_benchmark_name() -> None:
    result = run_benchmark("ingest.py", "--benchmarks=parse,replay", "--ticks=10")

    assert result.returncode == 2
    assert "--benchmarks takes names from parse,writes,lag; unknown: replay" in result.stderr


@pytest.mark.postgres
def test_tickstore_write_benchmark_prints_a_rate_per_backend(postgres_url: str) -> None:
    result = run_benchmark(
        "tickstore_write.py",
        "--ticks=2000",
        "--batch-size=500",
        "--backends=duckdb,postgres",
        postgres_url=postgres_url,
    )

    assert result.returncode == 0, result.stderr
    assert_lines(
        result.stdout,
        [rf"^duckdb\s+{RATE} ticks/s", rf"^postgresql\s+{RATE} ticks/s"],
    )


def test_latency_benchmark_prints_its_percentiles() -> None:
    result = run_benchmark("latency.py", "--orders=50", "--warmup=5")

    assert result.returncode == 0, result.stderr
    assert_lines(result.stdout, [r"^Machine: ", r"\bn=50\b.*\bp50="])


def test_tick_relay_benchmark_prints_a_rate_per_layout_and_checks_completeness(
    redis_url: str,
) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "tick_relay.py"), "--ticks=2000"],
        cwd=REPO,
        env={**os.environ, "TEST_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert_lines(
        result.stdout,
        [
            r"^Machine: ",
            rf"^\s*two processes\s+2,000\s+{MS}\s+{RATE}\s.*\byes$",
            rf"^\s*one process\s+2,000\s+{MS}\s+{RATE}\s.*\byes$",
        ],
    )


def test_backtest_benchmark_prints_each_engine_and_the_sweep() -> None:
    result = run_benchmark(
        "backtest.py", "--bars=3000", "--sweep-bars=3000", "--skip", "backtrader", "vectorbt"
    )

    assert result.returncode == 0, result.stderr
    row = rf"\s+[\d.]+\s+{RATE}\s+[\d.]+x\s+\d+\s+{RATE}\.\d\d$"
    assert_lines(
        result.stdout,
        [
            r"^Machine: ",
            r"^== 3,000 bars, sma_cross fast=10 slow=20",
            rf"^trademk event{row}",
            rf"^trademk fast{row}",
            rf"^backtesting\.py{row}",
            r"^trademk fast sweep\s+[\d.]+ s\s+best \{",
        ],
    )


def test_percentiles_use_nearest_rank_and_report_the_maximum() -> None:
    common = load_common()

    assert common.percentiles([5.0, 1.0, 4.0, 2.0, 3.0]) == {
        "p50": 3.0,
        "p95": 5.0,
        "p99": 5.0,
        "max": 5.0,
    }
    assert common.percentiles([], (50,)) == {"p50": None, "max": None}


def test_format_table_right_aligns_numbers_and_left_aligns_text() -> None:
    common = load_common()

    table = common.format_table(
        "title", ["backend", "ticks/s", "met"], [["duckdb", 812345.6, True], ["pg", 9.5, False]]
    )

    assert table.splitlines() == [
        "title",
        "  backend  ticks/s  met",
        "  -------  -------  ---",
        "  duckdb   812,346  yes",
        "  pg          9.50  NO",
    ]


def test_machine_description_reads_cpu_model_and_memory_from_proc_files(tmp_path: Path) -> None:
    common = load_common()
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU @ 3.00GHz\nflags\t: fpu\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684900 kB\nMemFree:        1000 kB\n")

    assert common.cpu_model(cpuinfo) == "Example CPU @ 3.00GHz"
    assert common.memory_total_bytes(meminfo) == 24684900 * 1024
    assert common.memory_total_bytes(tmp_path / "missing") == 0


def test_generated_frames_follow_the_documented_binance_layout() -> None:
    common = load_common()

    frames = common.generate_frames(400, seed=3)

    assert frames == common.generate_frames(400, seed=3)  # deterministic
    documents = [json.loads(frame) for frame in frames]
    trades = [d for d in documents if d["stream"].endswith("@trade")]
    books = [d for d in documents if d["stream"].endswith("@bookTicker")]
    assert len(trades) + len(books) == 400 and trades and books
    assert len({d["data"]["s"] for d in documents}) > 10
    for doc in trades:
        data = doc["data"]
        assert set(data) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
        assert data["e"] == "trade" and doc["stream"] == f"{data['s'].lower()}@trade"
        assert isinstance(data["p"], str) and float(data["p"]) > 0
        assert isinstance(data["q"], str) and isinstance(data["m"], bool)
    for doc in books:
        data = doc["data"]
        assert set(data) == {"u", "s", "b", "B", "a", "A"}
        assert all(isinstance(data[key], str) for key in ("b", "B", "a", "A"))
        assert float(data["b"]) < float(data["a"])
    assert b" " not in b"".join(frames)
