"""FastAPI dependencies: access to the platform's components."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from trademk.runtime import Platform
from trademk.wiring.trading_desk import TradingDesk


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def get_desk(platform: PlatformDep) -> TradingDesk:
    """The trading desk, or 503 while trading cannot run (e.g. the database is unreachable)."""
    if platform.desk is None:
        raise HTTPException(
            503, "trading is not running yet: the app database is unreachable or still starting"
        )
    return platform.desk


DeskDep = Annotated[TradingDesk, Depends(get_desk)]
