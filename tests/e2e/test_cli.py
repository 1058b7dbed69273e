"""The ``trademk`` command as a user runs it: real processes, real exit codes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

TRADEMK = str(Path(sys.executable).parent / "trademk")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "ENVIRONMENT": "development", **extra})
    return env


def _run(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRADEMK, *args],
        cwd=tmp_path,
        env=_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_prints_the_version(tmp_path: Path) -> None:
    from trademk import __version__

    result = _run(["version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"trademk {__version__}"


@pytest.mark.parametrize("command", ["run", "migrate", "version"])
def test_every_command_has_help(tmp_path: Path, command: str) -> None:
    result = _run([command, "--help"], tmp_path)
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_bad_option_exits_non_zero_with_message(tmp_path: Path) -> None:
    result = _run(["run", "--no-such-option"], tmp_path)
    assert result.returncode == 2
    assert "No such option" in result.stderr


def test_migrate_creates_the_database_under_data_dir(tmp_path: Path) -> None:
    result = _run(["migrate"], tmp_path)
    assert result.returncode == 0, result.stderr
    from trademk.storage.migrate import head_revision

    assert f"revision {head_revision()}" in result.stdout
    assert (tmp_path / "data" / "trademk.db").exists()


def test_migrate_against_postgres(tmp_path: Path, fresh_postgres_url: str) -> None:
    result = _run(["migrate"], tmp_path, DATABASE_URL=fresh_postgres_url)
    assert result.returncode == 0, result.stderr
    assert "postgresql+asyncpg" in result.stdout


def test_production_with_default_secret_refuses_to_start(tmp_path: Path) -> None:
    result = _run(["run"], tmp_path, ENVIRONMENT="production", SECRET_KEY="change-me-in-production")
    assert result.returncode == 2
    assert "refuses the default SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_a_clear_error(tmp_path: Path, closed_port: int) -> None:
    result = _run(
        ["migrate"], tmp_path, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed_port}/x"
    )
    assert result.returncode == 2
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_serves_health_and_stops_cleanly_on_ctrl_c(tmp_path: Path, closed_port: int) -> None:
    port = closed_port  # free now; the server binds it
    process = subprocess.Popen(
        [TRADEMK, "run", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status = _wait_for_health(f"http://127.0.0.1:{port}/api/health", process)
        assert status == 200
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/docs" in stdout
    assert "Traceback" not in stderr
    assert process.returncode == 0  # Ctrl-C is the way to stop it: a clean stop


def _wait_for_health(url: str, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"trademk run exited early: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(url, timeout=1).status_code
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the API did not answer within 30 s")
