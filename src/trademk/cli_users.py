"""``trademk user ...``: manage users from the command line, and the first-run admin."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from trademk.config import ConfigError, Settings
from trademk.engine.clock import LiveClock
from trademk.security.audit import Actor, AuditAction
from trademk.security.bootstrap import FirstAdmin
from trademk.security.errors import NotFoundError, SecurityError
from trademk.security.passwords import WeakPasswordError
from trademk.security.roles import Role
from trademk.security.services import SecurityServices
from trademk.security.users import UserInfo

T = TypeVar("T")

user_app = typer.Typer(
    name="user",
    help="Create and manage users (admin, trader, viewer).",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

EmailOption = Annotated[str, typer.Option("--email", help="The user's email address.")]
StdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]


def _settings() -> Settings:
    from trademk.cli import _settings as load

    return load()


async def _run_with_services(
    settings: Settings, work: Callable[[SecurityServices], Awaitable[T]]
) -> T:
    from trademk.storage import database, migrate

    engine = database.create_engine(settings.app_database_url)
    try:
        await migrate.upgrade(engine)
        services = SecurityServices(settings, LiveClock(), database.session_factory(engine))
        return await work(services)
    finally:
        await engine.dispose()


def _execute(work: Callable[[SecurityServices], Awaitable[T]]) -> T:
    settings = _settings()
    try:
        return asyncio.run(_run_with_services(settings, work))
    except (OSError, DBAPIError) as error:
        raise ConfigError(f"cannot reach the database: {error}") from None
    except (SecurityError, WeakPasswordError) as error:
        err.print(f"error: {error}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ConfigError("no password on standard input")
        return line
    prompted: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return prompted


async def _user_by_email(services: SecurityServices, email: str) -> UserInfo:
    user = await services.users.find_by_email(email)
    if user is None:
        raise NotFoundError(f"no user with email {email.strip().lower()}")
    return user


@user_app.command("create")
def create(
    email: EmailOption,
    role: Annotated[Role, typer.Option("--role", help="admin, trader or viewer.")] = Role.VIEWER,
    password_stdin: StdinOption = False,
) -> None:
    """Create a user; the password is prompted for (or read from stdin)."""
    password = _read_password(password_stdin)

    async def work(services: SecurityServices) -> UserInfo:
        user = await services.users.create(email, password, role)
        await services.audit.record(
            AuditAction.USER_CREATE, actor=Actor.cli(), target=user.email, detail={"role": role}
        )
        return user

    user = _execute(work)
    out.print(f"created {user.role.value} {user.email}", markup=False, highlight=False)


@user_app.command("list")
def list_users() -> None:
    """List every user with role and status."""

    async def work(services: SecurityServices) -> list[UserInfo]:
        return await services.users.list()

    table = Table("email", "role", "active", "created (UTC)")
    for user in _execute(work):
        table.add_row(
            user.email,
            user.role.value,
            "yes" if user.is_active else "no",
            user.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


@user_app.command("set-password")
def set_password(email: EmailOption, password_stdin: StdinOption = False) -> None:
    """Set a user's password; their sessions end."""
    password = _read_password(password_stdin)

    async def work(services: SecurityServices) -> UserInfo:
        user = await _user_by_email(services, email)
        updated = await services.users.update(user.id, password=password)
        await services.audit.record(
            AuditAction.USER_UPDATE,
            actor=Actor.cli(),
            target=user.email,
            detail={"changed": ["password"]},
        )
        return updated

    user = _execute(work)
    out.print(f"password set for {user.email}", markup=False, highlight=False)


@user_app.command("deactivate")
def deactivate(email: EmailOption) -> None:
    """Deactivate a user: logins, sessions and API keys stop working at once."""

    async def work(services: SecurityServices) -> UserInfo:
        user = await _user_by_email(services, email)
        updated = await services.users.update(user.id, is_active=False)
        await services.audit.record(
            AuditAction.USER_UPDATE,
            actor=Actor.cli(),
            target=user.email,
            detail={"is_active": False, "changed": ["is_active"]},
        )
        return updated

    user = _execute(work)
    out.print(f"deactivated {user.email}", markup=False, highlight=False)


def announce_first_admin(settings: Settings, console: Console) -> None:
    """On first run create the admin and show its generated password, once, on stdout."""

    async def work(services: SecurityServices) -> FirstAdmin | None:
        return await services.ensure_first_admin(generate=True)

    try:
        created = asyncio.run(_run_with_services(settings, work))
    except (OSError, DBAPIError):
        err.print("warning: database unreachable; no first admin created yet")
        return
    if created is None:
        return
    email = created.user.email
    if created.generated_password is None:
        console.print(
            f"First run: created admin {email} (password from TRADEMK_ADMIN_PASSWORD)",
            markup=False,
            highlight=False,
        )
        return
    console.print("First run: created the admin account (this password is shown only once)")
    console.print(f"  email     {email}", markup=False, highlight=False)
    console.print(f"  password  {created.generated_password}", markup=False, highlight=False)
    console.print(
        "  Change it with `trademk user set-password --email " + email + "`.", markup=False
    )
