"""First run: create an admin when there is no user yet.

The address and password come from TRADEMK_ADMIN_EMAIL / TRADEMK_ADMIN_PASSWORD
when set. Otherwise ``trademk run`` generates a password and prints it once
on the terminal; it is never logged. Processes started another way (an ASGI
server pointed at the app factory) only create the admin from those settings,
because they have nowhere safe to show a generated password.
"""

from __future__ import annotations

from dataclasses import dataclass

from trademk.security.audit import Actor, AuditAction, AuditLog
from trademk.security.errors import ConflictError
from trademk.security.passwords import generate_password
from trademk.security.roles import Role
from trademk.security.users import UserInfo, UserService

DEFAULT_ADMIN_EMAIL = "admin@localhost"


@dataclass(frozen=True, slots=True)
class FirstAdmin:
    """The admin created on first run; ``password`` is set only when it was generated."""

    user: UserInfo
    generated_password: str | None


async def ensure_first_admin(
    users: UserService,
    audit: AuditLog,
    *,
    email: str | None,
    password: str | None,
    generate: bool,
) -> FirstAdmin | None:
    """Create the first admin if the user table is empty; None when nothing was created.

    Without a configured password one is generated only when ``generate`` is
    true. Two processes racing here create one admin: the loser sees the
    address taken and returns None.
    """
    if await users.count() > 0:
        return None
    if password is None and not generate:
        return None
    generated = generate_password() if password is None else None
    try:
        user = await users.create(
            email or DEFAULT_ADMIN_EMAIL, password or generated or "", Role.ADMIN
        )
    except ConflictError:
        return None
    await audit.record(
        AuditAction.USER_CREATE,
        actor=Actor.cli(),
        target=user.email,
        detail={"role": Role.ADMIN.value, "first_run": True},
    )
    return FirstAdmin(user=user, generated_password=generated)
