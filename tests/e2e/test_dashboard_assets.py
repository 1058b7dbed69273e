"""How the API serves the dashboard's built files at /app (public, cached, contained)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.security.conftest import SecureApi, running_api, settings_for
from trademk.api.app import create_app
from trademk.api.routes.dashboard import DIST_DIR, NONCE_PLACEHOLDER, dashboard_dist

INDEX = f"""<!doctype html><html><head>
<meta name="trademk-csp-nonce" content="{NONCE_PLACEHOLDER}">
<script type="module" src="/app/assets/main-ABC123.js"></script></head>
<body><div id="app"></div></body></html>"""
SCRIPT = "export const answer = 42;\n"


def built_dist(root: Path) -> Path:
    """A dashboard build as `make web` lays it out, plus a file next to it."""
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "main-ABC123.js").write_text(SCRIPT)
    (dist / ".built").write_text("")
    (root / "secret.txt").write_text("not part of the dashboard")
    return dist


@pytest_asyncio.fixture
async def api_serving(tmp_path: Path) -> AsyncIterator[tuple[SecureApi, Path]]:
    """The API with its dashboard folder pointed at tmp_path/dist (which tests may fill)."""
    settings = settings_for(tmp_path / "data")
    app = create_app(settings)
    dist = tmp_path / "web" / "dist"
    app.dependency_overrides[dashboard_dist] = lambda: dist
    async with running_api(settings, app=app) as api:
        yield api, dist


def _nonce(csp: str) -> str:
    found = re.search(r"'nonce-([A-Za-z0-9_-]+)'", csp)
    assert found, csp
    return found.group(1)


async def test_the_page_is_public_with_a_fresh_csp_nonce_on_every_response(
    api_serving: tuple[SecureApi, Path],
) -> None:
    api, dist = api_serving
    built_dist(dist.parent)
    first = await api.client.get("/app")  # no credentials: the page itself is public
    second = await api.client.get("/app/")
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    assert first.headers["cache-control"] == "no-store"
    nonces = [_nonce(r.headers["content-security-policy"]) for r in (first, second)]
    assert nonces[0] != nonces[1]
    for response, nonce in zip((first, second), nonces, strict=True):
        assert f'content="{nonce}"' in response.text
        assert NONCE_PLACEHOLDER not in response.text
    policy = first.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy


async def test_hashed_assets_are_served_with_their_type_and_cached_for_good(
    api_serving: tuple[SecureApi, Path],
) -> None:
    api, dist = api_serving
    built_dist(dist.parent)
    response = await api.client.get("/app/assets/main-ABC123.js")
    assert response.status_code == 200
    assert response.text == SCRIPT
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "path",
    [
        "/app/assets/missing.js",
        "/app/.built",
        "/app/%2e%2e/secret.txt",
        "/app/assets/%2e%2e/%2e%2e/secret.txt",
    ],
)
async def test_only_files_of_the_build_are_served(
    api_serving: tuple[SecureApi, Path], path: str
) -> None:
    api, dist = api_serving
    built_dist(dist.parent)
    response = await api.client.get(path)
    assert response.status_code == 404
    assert "not part of the dashboard" not in response.text


@pytest.mark.parametrize("path", ["/app", "/app/", "/app/assets/main-ABC123.js"])
async def test_without_a_build_the_dashboard_answers_503_saying_to_run_make_web(
    api_serving: tuple[SecureApi, Path], path: str
) -> None:
    api, _ = api_serving
    response = await api.client.get(path)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "make web" in response.text


async def test_the_root_keeps_answering_json(api_serving: tuple[SecureApi, Path]) -> None:
    api, dist = api_serving
    built_dist(dist.parent)
    response = await api.client.get("/")
    assert response.status_code == 200
    assert response.json()["docs"] == "/docs"


async def test_the_real_build_references_assets_the_server_serves(tmp_path: Path) -> None:
    if not (DIST_DIR / "index.html").is_file():
        pytest.fail(f"the dashboard is not built in {DIST_DIR}: run `make web`", pytrace=False)
    settings = settings_for(tmp_path)
    async with running_api(settings) as api:
        page = await api.client.get("/app")
        assets = re.findall(r'(?:src|href)="(/app/assets/[^"]+)"', page.text)
        answers = {asset: (await api.client.get(asset)).status_code for asset in assets}
    assert page.status_code == 200
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    assert set(answers.values()) == {200}, answers
