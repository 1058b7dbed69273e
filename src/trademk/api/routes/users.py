"""Users: the caller's own account, and user administration for admins."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from trademk.api.security import (
    AdminDep,
    AuditDep,
    ViewerDep,
    error_responses,
    security_services,
)
from trademk.security.audit import AuditAction
from trademk.security.errors import ConflictError
from trademk.security.roles import AuthMethod, Role, Scope
from trademk.security.users import UserInfo

router = APIRouter(prefix="/api/v1/users", tags=["users"])

_NOT_FOUND = error_responses({404: "No such user"})
_CONFLICT = error_responses({409: "Conflicts with an existing user or the last admin"})
_BOTH = {**_NOT_FOUND, **_CONFLICT}


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: UserInfo) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            role=user.role,
            is_active=user.is_active,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class MeOut(UserOut):
    auth_method: AuthMethod
    api_key_id: uuid.UUID | None = None
    scopes: list[Scope] = Field(description="The API key's scopes (empty for sessions)")
    effective_role: Role = Field(description="The role this request acts with")


class UserCreateIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=256)
    role: Role = Role.VIEWER


class UserUpdateIn(BaseModel):
    role: Role | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=256)


@router.get("/me", response_model=MeOut, summary="The calling user and how they authenticated")
async def me(principal: ViewerDep, request: Request) -> MeOut:
    user = await security_services(request).users.get(principal.user_id)
    return MeOut(
        **UserOut.of(user).model_dump(),
        auth_method=principal.auth_method,
        api_key_id=principal.key_id,
        scopes=sorted(principal.scopes),
        effective_role=principal.effective_role,
    )


@router.get("", response_model=list[UserOut], summary="Every user (admin)")
async def list_users(principal: AdminDep, request: Request) -> list[UserOut]:
    return [UserOut.of(user) for user in await security_services(request).users.list()]


@router.post(
    "",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user (admin)",
    responses=_CONFLICT,
)
async def create_user(
    body: UserCreateIn, principal: AdminDep, request: Request, audit: AuditDep
) -> UserOut:
    user = await security_services(request).users.create(body.email, body.password, body.role)
    await audit.record(AuditAction.USER_CREATE, target=user.email, detail={"role": user.role})
    return UserOut.of(user)


@router.get("/{user_id}", response_model=UserOut, summary="One user (admin)", responses=_NOT_FOUND)
async def get_user(user_id: uuid.UUID, principal: AdminDep, request: Request) -> UserOut:
    return UserOut.of(await security_services(request).users.get(user_id))


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    summary="Change a user's role, status or password (admin)",
    responses=_BOTH,
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdateIn, principal: AdminDep, request: Request, audit: AuditDep
) -> UserOut:
    user = await security_services(request).users.update(
        user_id, role=body.role, is_active=body.is_active, password=body.password
    )
    changed = body.model_dump(exclude_none=True)
    detail = {name: value for name, value in changed.items() if name != "password"}
    detail["changed"] = sorted(changed)
    await audit.record(AuditAction.USER_UPDATE, target=user.email, detail=detail)
    return UserOut.of(user)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a user with their keys and sessions (admin)",
    responses=_BOTH,
)
async def delete_user(
    user_id: uuid.UUID, principal: AdminDep, request: Request, audit: AuditDep
) -> Response:
    if user_id == principal.user_id:
        raise ConflictError("you cannot delete yourself")
    user = await security_services(request).users.delete(user_id)
    await audit.record(AuditAction.USER_DELETE, target=user.email)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
