"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis).

Every operation gets valid and invalid requests, authenticated as an admin so
the handlers run rather than stopping at 401. No response may be a server
error, and every response must match what the schema declares for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from trademk.api.app import create_app
from trademk.config import Settings
from trademk.security.tokens import TokenType

ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzzing admin password"
EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


@pytest.fixture
def fuzzed_app(tmp_path: Path) -> Iterator[Any]:
    app_settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        trademk_admin_email=ADMIN_EMAIL,
        trademk_admin_password=ADMIN_PASSWORD,
        password_hash_memory_kib=1024,
        password_hash_time_cost=1,
        rate_limit_per_minute=1_000_000,
        rate_limit_ip_per_minute=1_000_000,
    )
    app = create_app(app_settings)
    try:
        yield app
    finally:
        asgi.shutdown_lifespans()


def _admin_id(app: Any) -> uuid.UUID:
    with asgi.get_client(app) as client:
        tokens = client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ).json()
        me = client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    return uuid.UUID(me.json()["id"])


def _fuzz(operation: Any, mode: GenerationMode, headers: Any) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(headers=headers())
        case.validate_response(response, checks=CHECKS)

    run()


def test_no_operation_answers_with_a_server_error_or_breaks_its_schema(fuzzed_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    admin_id = _admin_id(fuzzed_app)
    tokens = fuzzed_app.state.platform.security.tokens

    def headers() -> dict[str, str]:
        # A fresh token per request: fuzzing POST /auth/logout revokes the one it used.
        return {"Authorization": f"Bearer {tokens.issue(admin_id, TokenType.ACCESS).token}"}

    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert any(op.path == "/api/v1/users/{user_id}" for op in operations)
    failures = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, headers)
            except Unsatisfiable:
                pass  # no invalid input exists for an operation that takes none
            except (Exception, FailureGroup) as error:  # report every failing operation
                failures[f"{operation.method.upper()} {operation.path} ({mode.value})"] = error
    assert not failures, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())
