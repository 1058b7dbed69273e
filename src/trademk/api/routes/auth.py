"""Authentication: log in, refresh the session, log out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from trademk.api.security import (
    AuditDep,
    PublicDep,
    SessionDep,
    client_ip,
    error_responses,
    security_services,
)
from trademk.security.audit import AuditAction
from trademk.security.login import login
from trademk.security.sessions import TokenPair

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=320, examples=["admin@localhost"])
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(
        default=None, max_length=4096, description="End the session this token belongs to"
    )
    all_sessions: bool = Field(default=False, description="End every session of the user")


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_expires_in: int = Field(description="Seconds the refresh token is valid")

    @classmethod
    def of(cls, pair: TokenPair) -> TokenOut:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
            refresh_expires_in=pair.refresh_expires_in,
        )


@router.post(
    "/login",
    response_model=TokenOut,
    summary="Exchange email and password for an access and a refresh token",
    dependencies=[PublicDep],
    responses=error_responses(
        {401: "Wrong email or password", 429: "Too many failed logins; see Retry-After"}
    ),
)
async def login_route(body: LoginIn, request: Request, response: Response) -> TokenOut:
    pair = await login(
        security_services(request),
        body.email,
        body.password,
        ip=client_ip(request),
        request_id=getattr(request.state, "request_id", None),
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenOut.of(pair)


@router.post(
    "/refresh",
    response_model=TokenOut,
    summary="Spend a refresh token for a new pair (the old one stops working)",
    dependencies=[PublicDep],
    responses=error_responses({401: "Refresh token invalid, expired or used"}),
)
async def refresh(body: RefreshIn, request: Request, response: Response) -> TokenOut:
    pair = await security_services(request).session_tokens.refresh(body.refresh_token)
    response.headers["Cache-Control"] = "no-store"
    return TokenOut.of(pair)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="End this session (or all sessions); the access token stops working at once",
)
async def logout(
    body: LogoutIn, principal: SessionDep, request: Request, audit: AuditDep
) -> Response:
    services = security_services(request)
    await services.session_tokens.close(principal.user_id, body.refresh_token, body.all_sessions)
    if principal.token_id is not None:
        await services.session_tokens.deny_access_token(principal.token_id)
    await audit.record(AuditAction.LOGOUT, detail={"all_sessions": body.all_sessions})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
