"""`trademk run` as a new user starts it: the default paper strategies trade on their own.

A real process on the sim feed with the default settings; the test logs in as
the first admin and polls ``/api/v1/trading/orders`` until an order placed by
a strategy (it carries the strategy's id) shows up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TRADEMK = str(Path(sys.executable).parent / "trademk")
ADMIN_EMAIL = "first-admin@example.com"
ADMIN_PASSWORD = "a long first admin password"
DEADLINE_SECONDS = 120


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "FEED", "BROKER", "DEFAULT_STRATEGIES"))
    }
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "ENVIRONMENT": "development",
            "PORT": str(port),
            "TRADEMK_ADMIN_EMAIL": ADMIN_EMAIL,
            "TRADEMK_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
    )
    return env


def _login(base: str, process: subprocess.Popen[str], deadline: float) -> dict[str, str]:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"trademk run exited early: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            response = httpx.post(
                f"{base}/api/v1/auth/login",
                json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                timeout=5,
            )
        except httpx.TransportError:
            time.sleep(0.3)
            continue
        if response.status_code == 200:
            return {"Authorization": f"Bearer {response.json()['access_token']}"}
        time.sleep(0.3)
    raise AssertionError("could not log in as the first admin")


def _strategy_order(base: str, headers: dict[str, str], deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        orders: list[dict[str, Any]] = httpx.get(
            f"{base}/api/v1/trading/orders", params={"limit": 50}, headers=headers, timeout=5
        ).json()
        placed = [order for order in orders if order["strategy_id"]]
        if placed:
            return placed[0]
        time.sleep(1.0)
    raise AssertionError(f"no strategy placed an order within {DEADLINE_SECONDS} s")


def test_the_default_strategies_place_paper_orders_by_themselves(
    tmp_path: Path, closed_port: int
) -> None:
    base = f"http://127.0.0.1:{closed_port}"
    process = subprocess.Popen(
        [TRADEMK, "run", "--port", str(closed_port)],
        cwd=tmp_path,
        env=_env(tmp_path, closed_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        headers = _login(base, process, deadline)
        order = _strategy_order(base, headers, deadline)
        strategies = httpx.get(f"{base}/api/v1/strategies", headers=headers, timeout=5).json()
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    by_id = {strategy["id"]: strategy for strategy in strategies}
    assert order["strategy_id"] in by_id
    assert by_id[order["strategy_id"]]["mode"] == "paper"
    assert order["venue"] == "paper"
    assert "Traceback" not in stderr
