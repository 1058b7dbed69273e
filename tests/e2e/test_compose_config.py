"""The deployment files: compose.yaml renders with Debian's docker-compose, the
services are the ones docs/deployment.md describes, secrets come only from the
environment, and the image's health checks really probe the processes.

docker-compose is required, never skipped: `apt-get install docker-compose`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
SECRETS = {
    "SECRET_KEY": "k" * 48,
    "POSTGRES_PASSWORD": "pg-secret-4f1e",
    "REDIS_PASSWORD": "redis-secret-9a2b",
    "QUESTDB_PASSWORD": "quest-secret-77c0",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret-31d5",
}
TRADEMK_SERVICES = {
    "api": ["api"],
    "worker-ingest": ["worker", "--role", "ingest"],
    "worker-execution-1": ["worker", "--role", "execution"],
    "worker-execution-2": ["worker", "--role", "execution"],
    "worker-strategies": ["worker", "--role", "strategies"],
}


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(
            "docker-compose is not installed; install Debian's package with "
            "`apt-get install docker-compose` (.ci/run does this) and run the tests again.",
            pytrace=False,
        )
    return path


def compose(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on compose.yaml with exactly ``env`` (no .env file is read)."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    return subprocess.run(
        [docker_compose(), "-f", str(COMPOSE_FILE), "--env-file", str(empty_env_file), *args],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = compose(tmp_path_factory.mktemp("compose"), "config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def test_docker_compose_config_validates_the_compose_file(tmp_path: Path) -> None:
    result = compose(tmp_path, "config", "-q", env=SECRETS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_render_without_each_secret(tmp_path: Path, missing: str) -> None:
    env = {name: value for name, value in SECRETS.items() if name != missing}
    result = compose(tmp_path, "config", "-q", env=env)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_services_are_the_api_workers_and_infrastructure(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    infrastructure = {"migrate", "postgres", "redis", "questdb", "prometheus", "grafana"}
    assert set(services) == set(TRADEMK_SERVICES) | infrastructure
    for name, command in TRADEMK_SERVICES.items():
        assert services[name]["command"] == command, name
    assert services["migrate"]["command"] == ["migrate"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["questdb"]["image"].startswith("questdb/questdb:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_every_platform_process_waits_for_the_one_shot_migration(
    rendered: dict[str, Any],
) -> None:
    services = rendered["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in TRADEMK_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_processes_get_their_secrets_from_the_environment(rendered: dict[str, Any]) -> None:
    for name in (*TRADEMK_SERVICES, "migrate"):
        env = rendered["services"][name]["environment"]
        assert env["ENVIRONMENT"] == "production"
        assert env["SECRET_KEY"] == SECRETS["SECRET_KEY"]
        assert env["DATABASE_URL"] == (
            f"postgresql://trademk:{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/trademk"
        )
        assert env["REDIS_URL"] == f"redis://:{SECRETS['REDIS_PASSWORD']}@redis:6379/0"
        assert f"password={SECRETS['QUESTDB_PASSWORD']}" in env["TICKSTORE_URL"]
    grafana = rendered["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]


def test_prometheus_scrapes_the_api_and_every_worker(rendered: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    hosts = {target.split(":")[0] for target in targets} - {"localhost"}
    assert hosts == set(TRADEMK_SERVICES)
    assert "api:8000" in targets
    mounts = rendered["services"]["prometheus"]["volumes"]
    assert any(str(m).endswith("/etc/prometheus/prometheus.yml:ro") for m in mounts)


# -- the image ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of docker/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_image_is_a_slim_multi_stage_build_running_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert [a for op, a in instructions if op == "FROM"] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE} AS runtime",
    ]
    stage = final_stage()
    assert any(op == "COPY" and a.startswith("--from=build") for op, a in stage)
    assert not any(op == "RUN" and "build-essential" in a for op, a in stage)
    users = [a for op, a in stage if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("EXPOSE", "8000") in stage
    assert ("ENTRYPOINT", '["trademk"]') in stage


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path in ("/api/health", "/metrics") else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        _Health.status = 200


def run_probe(argv: list[str], port: int) -> int:
    """Run a health-check command (``python -c ...``) the way the container would."""
    assert argv[0] == "python"
    env = {"PATH": os.environ.get("PATH", ""), "PORT": str(port)}
    code = argv[2].replace("127.0.0.1:9100", f"127.0.0.1:{port}")
    result = subprocess.run(
        [sys.executable, argv[1], code], env=env, capture_output=True, timeout=30
    )
    return result.returncode


def test_image_healthcheck_passes_on_a_healthy_api_and_fails_otherwise(
    health_server: ThreadingHTTPServer,
) -> None:
    healthcheck = next(a for op, a in final_stage() if op == "HEALTHCHECK")
    argv = json.loads(healthcheck.split("CMD", 1)[1])
    port = health_server.server_address[1]
    assert run_probe(argv, port) == 0
    _Health.status = 503
    assert run_probe(argv, port) != 0


def test_worker_healthcheck_probes_the_metrics_port(
    rendered: dict[str, Any], health_server: ThreadingHTTPServer
) -> None:
    test = rendered["services"]["worker-ingest"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    port = health_server.server_address[1]
    assert run_probe(test[1:], port) == 0
    _Health.status = 503
    assert run_probe(test[1:], port) != 0
