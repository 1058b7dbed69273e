"""An ingest process serves Prometheus metrics on METRICS_PORT, and they move."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

TRADEMK = str(Path(sys.executable).parent / "trademk")


def _written(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "trademk_ticks_written":
            return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    return 0.0


def test_ingest_serves_metrics_that_count_written_ticks(tmp_path: Path, closed_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "METRICS_PORT": str(closed_port),
            "CRYPTO_SYMBOLS": "BTCUSDT,ETHUSDT",
            "SIM_TICKS_PER_SECOND": "500",
            "INGEST_FLUSH_INTERVAL": "0.05",
        }
    )
    process = subprocess.Popen(
        [TRADEMK, "ingest"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{closed_port}/metrics"
    try:
        samples: list[float] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(samples) < 2 or samples[-1] <= samples[0]):
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                samples.append(_written(httpx.get(url, timeout=2).text))
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert len(samples) >= 2 and samples[-1] > samples[0], samples
    assert process.returncode == 0, stderr.decode()[-2000:]
