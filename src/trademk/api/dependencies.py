"""FastAPI dependencies: access to the platform's components."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from trademk.engine.trading import TradingCore
from trademk.runtime import Platform


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def get_trading(platform: PlatformDep) -> TradingCore:
    """The trading core, or 503 while it cannot run (e.g. the database is unreachable)."""
    if platform.trading is None:
        raise HTTPException(
            503, "trading is not running yet: the app database is unreachable or still starting"
        )
    return platform.trading


TradingDep = Annotated[TradingCore, Depends(get_trading)]
