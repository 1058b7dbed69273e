"""``trademk user ...`` and the first-run admin, as a user runs them: real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from trademk.config import Settings
from trademk.engine.clock import LiveClock
from trademk.security.services import SecurityServices
from trademk.storage import database

TRADEMK = str(Path(sys.executable).parent / "trademk")
FAST_HASHING = {"PASSWORD_HASH_MEMORY_KIB": "1024", "PASSWORD_HASH_TIME_COST": "1"}
PASSWORD = "cli password for tests"


def trademk_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a trademk process: data under tmp_path, nothing inherited."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "TRADEMK_", "SECRET_", "ALPACA_"))
    }
    env.update({"DATA_DIR": str(tmp_path / "data"), "ENVIRONMENT": "development", **FAST_HASHING})
    env.update(extra)
    return env


def trademk(
    args: list[str], tmp_path: Path, stdin: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRADEMK, *args],
        cwd=tmp_path,
        env=trademk_env(tmp_path, **extra),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TrademkServer:
    """``trademk run`` in a subprocess; ``stop()`` returns what it printed and logged."""

    tmp_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    _out: IO[str] | None = field(default=None, repr=False)
    _err: IO[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TrademkServer:
        # Files, not pipes: a chatty server must never block on a full pipe.
        self._out = (self.tmp_path / f"server-{self.port}.out").open("w+")
        self._err = (self.tmp_path / f"server-{self.port}.err").open("w+")
        self.process = subprocess.Popen(
            [TRADEMK, "run", "--port", str(self.port)],
            cwd=self.tmp_path,
            env=trademk_env(self.tmp_path, **self.env),
            stdout=self._out,
            stderr=self._err,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"trademk run exited: {self.stop()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("the API did not answer within 30 s")

    def stop(self) -> tuple[str, str]:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
        output = []
        for handle in (self._out, self._err):
            assert handle is not None
            handle.seek(0)
            output.append(handle.read())
            handle.close()
        return output[0], output[1]


def _settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data")


async def _authenticates(tmp_path: Path, email: str, password: str) -> bool:
    engine = database.create_engine(_settings(tmp_path).app_database_url)
    try:
        services = SecurityServices(
            _settings(tmp_path), LiveClock(), database.session_factory(engine)
        )
        return await services.users.authenticate(email, password) is not None
    finally:
        await engine.dispose()


@pytest.mark.parametrize("command", ["create", "list", "set-password", "deactivate"])
def test_every_user_command_has_help(tmp_path: Path, command: str) -> None:
    result = trademk(["user", command, "--help"], tmp_path)
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_user_create_reads_the_password_from_stdin_and_lists_the_user(tmp_path: Path) -> None:
    created = trademk(
        ["user", "create", "--email", "Ops@Example.com", "--role", "trader", "--password-stdin"],
        tmp_path,
        stdin=PASSWORD + "\n",
    )
    listed = trademk(["user", "list"], tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "created trader ops@example.com"
    assert PASSWORD not in created.stdout + created.stderr
    assert "ops@example.com" in listed.stdout and "trader" in listed.stdout
    assert asyncio.run(_authenticates(tmp_path, "ops@example.com", PASSWORD))


def test_bad_input_is_a_clear_error_with_non_zero_exit(tmp_path: Path) -> None:
    weak = trademk(["user", "create", "--email", "a@example.com"], tmp_path, stdin="short\n")
    trademk(["user", "create", "--email", "b@example.com"], tmp_path, stdin=PASSWORD + "\n")
    duplicate = trademk(["user", "create", "--email", "b@example.com"], tmp_path, stdin=PASSWORD)
    bad_role = trademk(["user", "create", "--email", "c@example.com", "--role", "root"], tmp_path)
    unknown = trademk(["user", "deactivate", "--email", "nobody@example.com"], tmp_path)
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    assert "short" not in weak.stdout
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    assert bad_role.returncode == 2 and "root" in bad_role.stderr
    assert unknown.returncode == 1 and "no user with email" in unknown.stderr
    assert "Traceback" not in weak.stderr + duplicate.stderr + unknown.stderr


def test_set_password_and_deactivate(tmp_path: Path) -> None:
    trademk(["user", "create", "--email", "v@example.com"], tmp_path, stdin=PASSWORD)
    changed = trademk(
        ["user", "set-password", "--email", "v@example.com"], tmp_path, stdin="a new password 2"
    )
    assert changed.returncode == 0, changed.stderr
    assert asyncio.run(_authenticates(tmp_path, "v@example.com", "a new password 2"))
    assert not asyncio.run(_authenticates(tmp_path, "v@example.com", PASSWORD))
    deactivated = trademk(["user", "deactivate", "--email", "v@example.com"], tmp_path)
    listed = trademk(["user", "list"], tmp_path)
    assert deactivated.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if "v@example.com" in line)
    assert " no " in row
    assert not asyncio.run(_authenticates(tmp_path, "v@example.com", "a new password 2"))


def _generated_password(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.strip().startswith("password"))
    return line.split()[-1]


def test_first_run_creates_an_admin_and_prints_its_password_once(tmp_path: Path) -> None:
    # The password is printed before the server starts answering.
    first_stdout, first_stderr = TrademkServer(tmp_path).start().stop()
    password = _generated_password(first_stdout)
    second = TrademkServer(tmp_path).start()
    try:
        login = httpx.post(
            f"{second.url}/api/v1/auth/login",
            json={"email": "admin@localhost", "password": password},
            timeout=10,
        )
        me = httpx.get(
            f"{second.url}/api/v1/users/me",
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
            timeout=10,
        )
    finally:
        second_stdout, second_stderr = second.stop()
    assert "admin@localhost" in first_stdout and first_stdout.count(password) == 1
    assert password not in first_stderr
    assert login.status_code == 200 and me.json()["role"] == "admin"
    assert password not in second_stdout + second_stderr
    assert "First run" not in second_stdout


def test_first_run_takes_the_admin_from_the_environment(tmp_path: Path) -> None:
    env = {"TRADEMK_ADMIN_EMAIL": "root@example.com", "TRADEMK_ADMIN_PASSWORD": PASSWORD}
    server = TrademkServer(tmp_path, env=env).start()
    try:
        login = httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"email": "root@example.com", "password": PASSWORD},
            timeout=10,
        )
        anonymous = httpx.get(f"{server.url}/api/v1/users/me", timeout=10)
    finally:
        stdout, stderr = server.stop()
    assert login.status_code == 200
    assert anonymous.status_code == 401
    assert "created admin root@example.com (password from TRADEMK_ADMIN_PASSWORD)" in stdout
    assert PASSWORD not in stdout + stderr
