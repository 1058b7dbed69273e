"""Hardening middleware and the redacting validation handler on a bare app."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from trademk.api.hardening import install_hardening
from trademk.config import Settings


class Credentials(BaseModel):
    email: str = Field(min_length=3)
    password: str = Field(min_length=12)
    api_key: str | None = Field(default=None, min_length=40)


def _app(**settings: object) -> FastAPI:
    app = FastAPI()
    install_hardening(app, Settings(_env_file=None, **settings))  # type: ignore[arg-type]

    @app.post("/check")
    async def check(body: Credentials) -> dict[str, str]:
        return {"email": body.email}

    @app.get("/framed")
    async def framed() -> JSONResponse:
        return JSONResponse({}, headers={"X-Frame-Options": "SAMEORIGIN"})

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<p>hi</p>"

    return app


def _client(app: FastAPI, base_url: str = "http://test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def test_validation_errors_do_not_echo_secrets_sent() -> None:
    async with _client(_app()) as client:
        short = await client.post("/check", json={"email": "a@b.c", "password": "short-pw1"})
        missing = await client.post(
            "/check", json={"password": "the-whole-body-secret", "api_key": "tmk_key"}
        )
    assert short.status_code == missing.status_code == 422
    assert "short-pw1" not in short.text and "***" in short.text
    assert "the-whole-body-secret" not in missing.text and "tmk_key" not in missing.text
    assert missing.json()["detail"][0]["loc"] == ["body", "email"]


async def test_https_requests_get_strict_transport_security() -> None:
    async with _client(_app(), base_url="https://test") as client:
        response = await client.get("/page")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_headers_a_route_sets_itself_are_kept() -> None:
    async with _client(_app()) as client:
        framed = await client.get("/framed")
        page = await client.get("/page")
    assert framed.headers["x-frame-options"] == "SAMEORIGIN"
    assert "content-security-policy" in framed.headers
    assert "content-security-policy" not in page.headers


async def test_body_limit_leaves_small_bodies_alone() -> None:
    async with _client(_app(max_body_bytes=1024)) as client:
        ok = await client.post("/check", json={"email": "a@b.c", "password": "x" * 20})
        big = await client.post("/check", json={"email": "a@b.c", "password": "x" * 2000})
    assert ok.status_code == 200
    assert big.status_code == 413
    assert big.json() == {"detail": "request body larger than 1024 bytes"}
