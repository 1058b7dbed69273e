"""The web dashboard at ``/app``: the single-page app built from ``web/`` by ``make web``.

The pages and assets are public (the app itself logs in and calls the API with a
Bearer token). ``index.html`` is served with a Content-Security-Policy carrying a
fresh nonce per response (the app uses it to open backtest reports, whose inline
scripts need it); hashed assets are cached for good. When the build output is
missing, every dashboard path answers 503 with a page saying to run ``make web``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

from trademk.api.security import PublicDep

DIST_DIR: Final = Path(__file__).resolve().parents[2] / "web" / "dist"
NONCE_PLACEHOLDER: Final = "__CSP_NONCE__"
IMMUTABLE: Final = "public, max-age=31536000, immutable"

NOT_BUILT_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dashboard not built</title>
<style>body{font-family:system-ui,sans-serif;margin:3rem;max-width:40rem;line-height:1.5}
code{background:#eee;padding:0.1rem 0.3rem}</style></head>
<body><h1>The dashboard is not built</h1>
<p>The web dashboard's assets are missing from this installation. Build them with
<code>make web</code> (it needs Node.js and npm: <code>npm ci &amp;&amp; npm run build</code>
in <code>web/</code>), then reload this page.</p>
<p>The REST API (<a href="/docs">/docs</a>) and the WebSocket API work without it.</p>
</body></html>
"""
NOT_BUILT_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

router = APIRouter(tags=["dashboard"], include_in_schema=False)


def dashboard_dist() -> Path:
    """The folder of the built dashboard (a dependency, so tests can point elsewhere)."""
    return DIST_DIR


DistDep = Annotated[Path, Depends(dashboard_dist)]


def content_security_policy(nonce: str) -> str:
    """The dashboard page's policy: its own scripts, the API and /ws on this origin,
    blob: frames and images (backtest reports), inline scripts only with ``nonce``."""
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "frame-src blob:",
            "worker-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _not_built() -> HTMLResponse:
    return HTMLResponse(
        NOT_BUILT_PAGE,
        status_code=503,
        headers={"Content-Security-Policy": NOT_BUILT_CSP, "Cache-Control": "no-store"},
    )


def _index(dist: Path) -> Response:
    try:
        template = (dist / "index.html").read_text(encoding="utf-8")
    except FileNotFoundError:
        return _not_built()
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(
        template.replace(NONCE_PLACEHOLDER, nonce),
        headers={
            "Content-Security-Policy": content_security_policy(nonce),
            "Cache-Control": "no-store",
        },
    )


def _asset(dist: Path, path: str) -> Response:
    if not (dist / "index.html").is_file():
        return _not_built()
    root = dist.resolve()
    target = (root / path).resolve()
    hidden = any(part.startswith(".") for part in Path(path).parts)
    if hidden or not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, f"the dashboard has no file {path!r}")
    cache = IMMUTABLE if target.parent.name == "assets" else "no-cache"
    return FileResponse(target, headers={"Cache-Control": cache})


@router.get("/app", dependencies=[PublicDep], summary="The web dashboard")
def dashboard(dist: DistDep) -> Response:
    return _index(dist)


@router.get("/app/{path:path}", dependencies=[PublicDep], summary="Dashboard assets")
def dashboard_file(path: str, dist: DistDep) -> Response:
    if path in ("", "index.html"):
        return _index(dist)
    return _asset(dist, path)
