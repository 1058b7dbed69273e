"""FastAPI dependencies: access to the platform's components."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trademk.runtime import Platform


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]
