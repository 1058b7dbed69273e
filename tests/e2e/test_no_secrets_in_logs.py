"""A whole session against a real server leaves none of its secrets in the output.

The server runs with configured secrets (SECRET_KEY, Alpaca keys, the admin
password) and debug logging; the test logs in (also with a wrong password),
refreshes, creates and uses an API key, creates a user, logs out, then checks
that nothing it sent or received as a secret appears in stdout or stderr.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.test_security_cli import TrademkServer

SECRETS = {
    "SECRET_KEY": "e2e-secret-key-0123456789-abcdefghijklmnop",
    "ALPACA_API_KEY": "PKE2ETESTKEYID0123456",
    "ALPACA_API_SECRET": "e2e-alpaca-secret-value-0123456789",
    "TRADEMK_ADMIN_PASSWORD": "e2e admin password 123",
}
WRONG_PASSWORD = "e2e-wrong-password-guess"
NEW_USER_PASSWORD = "e2e new user password"


def _exercise(url: str) -> list[str]:
    """Use the API the way a client would; returns the secrets it saw."""
    seen = []
    with httpx.Client(base_url=url, timeout=10) as client:
        denied = client.post(
            "/api/v1/auth/login",
            json={"email": "admin@example.com", "password": WRONG_PASSWORD},
        )
        assert denied.status_code == 401
        tokens = client.post(
            "/api/v1/auth/login",
            json={"email": "admin@example.com", "password": SECRETS["TRADEMK_ADMIN_PASSWORD"]},
        ).json()
        seen += [tokens["access_token"], tokens["refresh_token"]]
        rotated = client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        ).json()
        seen += [rotated["access_token"], rotated["refresh_token"]]
        session = {"Authorization": f"Bearer {rotated['access_token']}"}
        key = client.post(
            "/api/v1/api-keys", json={"name": "e2e", "scopes": ["admin"]}, headers=session
        ).json()["key"]
        seen.append(key)
        created = client.post(
            "/api/v1/users",
            json={"email": "e2e-user@example.com", "password": NEW_USER_PASSWORD},
            headers={"X-API-Key": key},
        )
        assert created.status_code == 201, created.text
        assert client.get("/api/v1/audit", headers={"X-API-Key": key}).status_code == 200
        forged = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}x"})
        assert forged.status_code == 401
        logout = client.post(
            "/api/v1/auth/logout",
            json={"refresh_token": rotated["refresh_token"]},
            headers=session,
        )
        assert logout.status_code == 204
    return seen


def test_server_output_contains_no_secret_used_in_a_session(tmp_path: Path) -> None:
    env = {
        **SECRETS,
        "TRADEMK_ADMIN_EMAIL": "admin@example.com",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
    }
    server = TrademkServer(tmp_path, env=env).start()
    try:
        seen = _exercise(server.url)
    finally:
        stdout, stderr = server.stop()
    output = stdout + stderr
    assert '"path": "/api/v1/auth/login"' in output  # the requests were logged
    leaked = [
        name
        for name, value in {
            **SECRETS,
            "wrong password": WRONG_PASSWORD,
            "new user password": NEW_USER_PASSWORD,
            **{f"issued secret {n}": value for n, value in enumerate(seen)},
        }.items()
        if value in output
    ]
    assert leaked == []
